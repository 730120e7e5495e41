import { sql } from "kysely";
import type { Db } from "../db/connect.js";
import type { BatchEventKind } from "../domain/batch-events.js";

/** A serverless batch whose status.json is behind its timeline. */
export interface StaleStatus {
  batchId: string;
  tenant: string;
  /** The newest timeline entry, which the rewrite covers. */
  seq: number;
  /** The batch is in a final state: this rewrite is its last. */
  final: boolean;
}

/**
 * The timeline entries that move a batch's status (to validating, in_progress or failed,
 * cancelling, finalizing, a final state): status.json follows these, not every chunk claim.
 */
const STATUS_KINDS: BatchEventKind[] = ["created", "validated", "validation_failed", "cancel_requested", "finalizing", "final"];

/**
 * Serverless batches with status-moving timeline entries newer than their status.json. Why through the
 * partial index of open rows: finished objects drop out of it, so a round costs what is running,
 * not the inbox's whole history.
 */
export async function staleStatusObjects(db: Db, limit: number): Promise<StaleStatus[]> {
  const { rows } = await sql<{ batch_id: string; tenant: string; seq: number; final: boolean }>`
    SELECT o.batch_id, b.tenant, e.seq, b.status IN ('completed', 'failed', 'cancelled', 'expired') AS final
    FROM s3_objects o
    JOIN batches b ON b.id = o.batch_id
    CROSS JOIN LATERAL (
      SELECT max(seq)::int8 AS seq FROM batch_events WHERE batch_id = o.batch_id AND kind = ANY(${STATUS_KINDS}::text[])
    ) e
    WHERE o.batch_id IS NOT NULL AND NOT o.status_final AND e.seq > o.status_seq
    ORDER BY e.seq
    LIMIT ${limit}
  `.execute(db);
  return rows.map((r) => ({ batchId: r.batch_id, tenant: r.tenant, seq: Number(r.seq), final: r.final }));
}

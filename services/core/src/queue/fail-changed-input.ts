import { sql } from "kysely";
import type { Db } from "../db/connect.js";
import type { BatchErrorEntry } from "../db/schema.js";

/**
 * Fails a running batch whose input object was replaced after validation, as seen by the runner
 * of one of its chunks (a pinned GET answered 412). Why one statement, fenced on that chunk's
 * lease: the batch goes `failed` and every chunk not done is closed together, so no agent claims
 * one again and re-reads a changed input forever, and the other runners stop at their next
 * heartbeat (their chunk is no longer leased). Returns whether the batch moved.
 */
export async function failChangedInput(
  db: Db,
  args: { batchId: string; idx: number; fence: number; errors: BatchErrorEntry[] },
): Promise<boolean> {
  const { rows } = await sql<{ id: string }>`
    WITH failed AS (
      UPDATE batches b
      SET status = 'failed', failed_at = now(), errors = ${JSON.stringify(args.errors)}::jsonb
      WHERE b.id = ${args.batchId} AND b.status = 'in_progress'
        AND EXISTS (
          SELECT 1 FROM chunks c
          WHERE c.batch_id = b.id AND c.idx = ${args.idx} AND c.fence = ${args.fence} AND c.status = 'leased'
        )
      RETURNING b.id
    ), closed AS (
      UPDATE chunks c
      SET status = 'cancelled', leased_by = NULL, lease_expires_at = NULL, updated_at = now()
      FROM failed
      WHERE c.batch_id = failed.id AND c.status IN ('queued', 'leased')
      RETURNING c.idx
    )
    SELECT id FROM failed
  `.execute(db);
  return rows.length === 1;
}

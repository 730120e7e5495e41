import { sql } from "kysely";
import type { Db } from "../db/connect.js";

/**
 * Hands back a leased chunk whose commit Postgres refused for its data (a permanent error),
 * recording why. A retry would fail the same way, so the next holder does not run its requests:
 * it fails what is left as `unstorable_result`, which commits (the error rows are made storable)
 * and lets the batch finish. The claim counts as a failed one, like any failed run. Fenced:
 * releasing a lost lease is a no-op. The same statement writes the `chunk_retried` entry
 * (reason `unstorable`), naming the holder the release took the chunk from.
 */
export async function releaseUnstorableChunk(db: Db, args: { batchId: string; idx: number; fence: number; error: string }): Promise<boolean> {
  const { rows } = await sql<{ idx: number }>`
    WITH held AS (
      SELECT batch_id, idx, leased_by FROM chunks
      WHERE batch_id = ${args.batchId} AND idx = ${args.idx} AND fence = ${args.fence} AND status = 'leased'
      FOR UPDATE
    ), released AS (
      UPDATE chunks c
      SET status = 'queued', leased_by = NULL, lease_expires_at = NULL, updated_at = now(),
          failures = c.failures + 1, unstorable_error = ${args.error}
      FROM held
      WHERE c.batch_id = held.batch_id AND c.idx = held.idx
      RETURNING c.batch_id, c.idx, held.leased_by
    ), events AS (
      INSERT INTO batch_events (batch_id, kind, data)
      SELECT batch_id, 'chunk_retried', jsonb_build_object('chunk', idx, 'agent', leased_by, 'reason', 'unstorable') FROM released
    )
    SELECT idx FROM released
  `.execute(db);
  return rows.length === 1;
}

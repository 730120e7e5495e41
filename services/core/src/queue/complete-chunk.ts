import { sql, type Transaction } from "kysely";
import type { Database } from "../db/schema.js";
import { affectedOne } from "./affected.js";

/**
 * Marks a fully committed chunk done and drops its lease, recording its holder in `done_by` (how
 * the spread of a batch over agents is seen). Fenced, and only when every request is committed,
 * so a stale holder can never close a chunk another agent is still running.
 */
export async function completeChunk(
  tx: Transaction<Database>,
  args: { batchId: string; idx: number; fence: number },
): Promise<boolean> {
  const r = await sql`
    UPDATE chunks
    SET status = 'done', done_by = leased_by, leased_by = NULL, lease_expires_at = NULL, done_at = now(), updated_at = now()
    WHERE batch_id = ${args.batchId} AND idx = ${args.idx} AND fence = ${args.fence}
      AND status = 'leased' AND committed = request_count
  `.execute(tx);
  return affectedOne(r);
}

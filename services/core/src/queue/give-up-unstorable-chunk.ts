import { sql, type Transaction } from "kysely";
import type { BatchErrorEntry, Database } from "../db/schema.js";
import { affectedOne } from "./affected.js";

/**
 * Closes a leased chunk of which Postgres stores nothing, its `unstorable_result` rows refused
 * too on CHUNK_MAX_ATTEMPTS claims: it is marked done with every request it never committed
 * counted failed (they get no result line), and `entry` is appended to the batch's `errors`, so
 * the batch can still finish and says what it lost. Why one statement: the chunk's close and the
 * batch's record of it can never be seen apart. Fenced on the lease, like every runner write; run
 * in the transaction that then calls `markFinalizing`.
 */
export async function giveUpUnstorableChunk(
  tx: Transaction<Database>,
  args: { batchId: string; idx: number; fence: number; entry: BatchErrorEntry },
): Promise<boolean> {
  const r = await sql`
    WITH closed AS (
      UPDATE chunks
      SET status = 'done', done_by = leased_by, leased_by = NULL, lease_expires_at = NULL, done_at = now(), updated_at = now(),
          failed = failed + (request_count - committed), committed = request_count
      WHERE batch_id = ${args.batchId} AND idx = ${args.idx} AND fence = ${args.fence} AND status = 'leased'
      RETURNING batch_id
    )
    UPDATE batches b
    -- A batch without errors holds SQL NULL or JSON null there.
    SET errors = (CASE WHEN jsonb_typeof(b.errors) = 'array' THEN b.errors ELSE '[]'::jsonb END) || ${JSON.stringify([args.entry])}::jsonb
    FROM closed
    WHERE b.id = closed.batch_id
  `.execute(tx);
  return affectedOne(r);
}

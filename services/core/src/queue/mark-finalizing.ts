import { sql, type Transaction } from "kysely";
import type { Database } from "../db/schema.js";
import { affectedOne } from "./affected.js";

/**
 * Moves a batch to `finalizing` once no chunk is left unfinished. Run in the transaction that
 * completes a chunk. Why two statements: under READ COMMITTED a statement's snapshot is taken
 * when it starts, so concurrent last-chunk completions would each miss the others' uncommitted
 * `done` and none would flip the state. Locking the batch row first, in its own statement,
 * queues them; each later check then runs on a fresh snapshot that sees every earlier commit,
 * so exactly one of them sees "none left".
 */
export async function markFinalizing(tx: Transaction<Database>, batchId: string): Promise<boolean> {
  await sql`SELECT 1 FROM batches WHERE id = ${batchId} FOR UPDATE`.execute(tx);
  const r = await sql`
    UPDATE batches
    SET status = 'finalizing', finalizing_at = now()
    WHERE id = ${batchId} AND status = 'in_progress'
      AND NOT EXISTS (SELECT 1 FROM chunks WHERE batch_id = ${batchId} AND status <> 'done')
  `.execute(tx);
  return affectedOne(r);
}

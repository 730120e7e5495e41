import { sql, type Transaction } from "kysely";
import type { Database } from "../db/schema.js";

/**
 * Moves a batch to `finalizing` once no chunk is left unfinished. Run in the transaction that
 * completes a chunk: the batch row's lock serialises concurrent last-chunk completions, so
 * exactly one of them sees "none left" and flips the state; the others match no row.
 */
export async function markFinalizing(tx: Transaction<Database>, batchId: string): Promise<boolean> {
  const r = await sql`
    UPDATE batches
    SET status = 'finalizing', finalizing_at = now()
    WHERE id = ${batchId} AND status = 'in_progress'
      AND NOT EXISTS (SELECT 1 FROM chunks WHERE batch_id = ${batchId} AND status <> 'done')
  `.execute(tx);
  return Number(r.numAffectedRows ?? 0) === 1;
}

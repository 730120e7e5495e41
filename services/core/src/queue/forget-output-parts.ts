import { sql, type Transaction } from "kysely";
import type { Database } from "../db/schema.js";
import { affectedRows } from "./affected.js";

/**
 * Drops a batch's output part records. Run in the transaction that publishes the batch: once
 * published, its output upload is completed or aborted, so the records describe nothing that exists.
 */
export async function forgetOutputParts(tx: Transaction<Database>, batchId: string): Promise<number> {
  const r = await sql`DELETE FROM output_parts WHERE batch_id = ${batchId}`.execute(tx);
  return affectedRows(r);
}

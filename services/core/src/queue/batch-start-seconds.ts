import { sql, type Transaction } from "kysely";
import type { Database } from "../db/schema.js";

/**
 * Seconds from a batch's creation to its start (`in_progress_at - created_at`), null before it
 * started. Why read back from the row: the `validated` timeline entry reports the wait from the
 * very stamps the Batch object shows, read in the transaction that set them.
 */
export async function batchStartSeconds(tx: Transaction<Database>, batchId: string): Promise<number | null> {
  const { rows } = await sql<{ seconds: number | null }>`
    SELECT round(extract(epoch FROM in_progress_at - created_at)::numeric, 3)::float8 AS seconds FROM batches WHERE id = ${batchId}
  `.execute(tx);
  return rows[0]?.seconds ?? null;
}

import { sql, type Transaction } from "kysely";
import type { BatchRow, Database } from "../db/schema.js";

/**
 * Resumes a paused batch: clearing `paused_at` is all it takes, since its released chunks are
 * still `queued` and the claim skips them only while it is set. Why only `in_progress`: a batch
 * cancelled or expired while paused has nothing left to run. Undefined when nothing changed.
 */
export async function resumeBatch(tx: Transaction<Database>, batchId: string): Promise<BatchRow | undefined> {
  const { rows } = await sql<BatchRow>`
    UPDATE batches SET paused_at = NULL
    WHERE id = ${batchId} AND status = 'in_progress' AND paused_at IS NOT NULL
    RETURNING *
  `.execute(tx);
  return rows[0];
}

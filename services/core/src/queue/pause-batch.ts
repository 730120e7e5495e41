import { sql, type Transaction } from "kysely";
import type { BatchRow, Database } from "../db/schema.js";

/**
 * Pauses a running batch: its queued chunks stop being claimed and its leased ones are handed
 * back at their runners' next heartbeat. Why only `in_progress` and not yet paused: the status
 * stays as it is (the SDKs know no paused state), so `paused_at` is the whole of the change, and
 * a repeated pause must not move it. Undefined when nothing changed.
 */
export async function pauseBatch(tx: Transaction<Database>, batchId: string): Promise<BatchRow | undefined> {
  const { rows } = await sql<BatchRow>`
    UPDATE batches SET paused_at = now()
    WHERE id = ${batchId} AND status = 'in_progress' AND paused_at IS NULL
    RETURNING *
  `.execute(tx);
  return rows[0];
}

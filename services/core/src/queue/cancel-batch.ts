import { sql, type Transaction } from "kysely";
import type { BatchErrorEntry, BatchRow, Database } from "../db/schema.js";
import { CANCELLABLE_BATCH_STATUSES } from "../domain/batch-state.js";

/**
 * Starts a cancel: the batch goes `cancelling` and its queued chunks are closed so nobody claims
 * them; leased chunks learn of it at their next heartbeat. A batch still validating has nothing
 * to keep and goes straight to `cancelled`. Idempotent on already-cancelling or final batches.
 * `reason`, for a cancel nobody asked for (the failure threshold), is kept as `cancel_reason`
 * and as the batch's `errors` entry, where OpenAI's clients look for why a batch ended.
 */
export async function cancelBatch(tx: Transaction<Database>, batchId: string, reason?: BatchErrorEntry): Promise<BatchRow | undefined> {
  const { rows } = await sql<BatchRow>`
    UPDATE batches
    SET status = CASE WHEN status = 'validating' THEN 'cancelled' ELSE 'cancelling' END,
        cancelling_at = now(),
        cancelled_at = CASE WHEN status = 'validating' THEN now() ELSE NULL END
        ${reason === undefined ? sql`` : sql`, cancel_reason = ${reason.code}, errors = ${JSON.stringify([reason])}::jsonb`}
    WHERE id = ${batchId} AND status IN (${sql.join(CANCELLABLE_BATCH_STATUSES.map((s) => sql.lit(s)))})
    RETURNING *
  `.execute(tx);
  await sql`UPDATE chunks SET status = 'cancelled', updated_at = now() WHERE batch_id = ${batchId} AND status = 'queued'`.execute(tx);
  return rows[0];
}

import type { Kysely } from "kysely";
import { canTransitionBatch, transitionTimestamp, type BatchStatus, type BatchTimestampColumn } from "../domain/batch-state.js";
import type { BatchUpdate, Database } from "../db/schema.js";
import { affectedOne } from "./affected.js";

/** The columns a state change may set besides its status: never the status, its timestamps or the lease. */
export type BatchTransitionSet = Omit<BatchUpdate, "status" | BatchTimestampColumn | "worker_id" | "worker_lease_expires_at" | "worker_fence"> & {
  [K in "status" | BatchTimestampColumn | "worker_id" | "worker_lease_expires_at" | "worker_fence"]?: never;
};

/**
 * A batch worker's state change (validated, failed, stitched, cancelled). Why fenced on
 * `worker_fence` and the expected `from` state: a worker whose lease lapsed and was re-claimed
 * matches no row, so two finalizers can never both publish results. The move must be one of
 * `BATCH_TRANSITIONS`, and the `*_at` column it stamps comes from `transitionTimestamp`, so no
 * caller picks one. A move to a final status also fires the `batch_reached_final_state`
 * trigger (see `FINAL_STATE_SIDE_EFFECTS` in domain/batch-state.ts) in the same transaction.
 */
export async function transitionBatch(
  db: Kysely<Database>,
  args: { batchId: string; fence: number; from: readonly BatchStatus[]; to: BatchStatus; set?: BatchTransitionSet },
): Promise<boolean> {
  if (args.from.length === 0) throw new Error(`batch ${args.batchId}: a transition to ${args.to} needs a status to move from`);
  for (const from of args.from) {
    if (!canTransitionBatch(from, args.to)) throw new Error(`batch ${args.batchId}: no transition from ${from} to ${args.to}`);
  }
  const stamp: BatchUpdate = {};
  const column = transitionTimestamp(args.to);
  if (column !== null) stamp[column] = new Date();
  const r = await db
    .updateTable("batches")
    .set({ ...args.set, status: args.to, ...stamp, worker_id: null, worker_lease_expires_at: null })
    .where("id", "=", args.batchId)
    .where("worker_fence", "=", args.fence)
    .where("status", "in", args.from)
    .executeTakeFirst();
  return affectedOne(r);
}

import type { Kysely } from "kysely";
import type { BatchStatus, BatchUpdate, Database } from "../db/schema.js";
import { affectedOne } from "./affected.js";

/**
 * A batch worker's state change (validated, failed, stitched, cancelled). Why fenced on
 * `worker_fence` and the expected `from` state: a worker whose lease lapsed and was re-claimed
 * matches no row, so two finalizers can never both publish results.
 */
export async function transitionBatch(
  db: Kysely<Database>,
  args: { batchId: string; fence: number; from: BatchStatus[]; set: BatchUpdate },
): Promise<boolean> {
  const r = await db
    .updateTable("batches")
    .set({ ...args.set, worker_id: null, worker_lease_expires_at: null })
    .where("id", "=", args.batchId)
    .where("worker_fence", "=", args.fence)
    .where("status", "in", args.from)
    .executeTakeFirst();
  return affectedOne(r);
}

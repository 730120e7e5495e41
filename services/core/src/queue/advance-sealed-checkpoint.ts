import { sql, type Transaction } from "kysely";
import type { Database } from "../db/schema.js";
import type { SegmentCommit } from "./commit-segment.js";
import { affectedOne } from "./affected.js";

/**
 * The finalizer's counterpart of `advanceCheckpoint`, for the `batch_expired` lines it writes
 * into chunks that were sealed (closed, fence bumped) when their batch expired. No runner can
 * commit to a sealed chunk any more, so this one is fenced on the finalizer's batch lease
 * (`worker_fence`) instead, plus `next_seq` so a replayed or stale fill matches no row.
 * Must run in the transaction that records the segment and its request errors.
 */
export async function advanceSealedCheckpoint(tx: Transaction<Database>, c: SegmentCommit, workerFence: number): Promise<boolean> {
  const r = await sql`
    UPDATE chunks c
    SET committed = c.committed + ${c.requests},
        next_offset = ${c.nextOffset},
        next_line = ${c.nextLine},
        next_seq = c.next_seq + 1,
        failed = c.failed + ${c.failed},
        updated_at = now()
    FROM batches b
    WHERE b.id = c.batch_id AND b.worker_fence = ${workerFence} AND b.status = 'finalizing'
      AND c.batch_id = ${c.batchId} AND c.idx = ${c.idx} AND c.status = 'cancelled'
      AND c.next_seq = ${c.seq} AND c.committed + ${c.requests} <= c.request_count
  `.execute(tx);
  return affectedOne(r);
}

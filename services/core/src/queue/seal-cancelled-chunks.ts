import { sql } from "kysely";
import type { Db } from "../db/connect.js";
import { affectedRows } from "./affected.js";

/**
 * Run by the finalizer of a cancelling or expired (`finalizing`) batch before it lists the
 * segments: closes every chunk that is not done and bumps its fence. Why: `claimBatchWork` admits a cancelling batch once no
 * chunk holds a *live* lease, but a holder whose lease merely lapsed (a partitioned agent the
 * rescuer has not reached yet) could still renew and commit a segment after the stitch listed
 * them; and a chunk released after the cancel sits queued. The fence bump locks out the first,
 * the status change the second. Fenced on the finalizer's own batch lease and the stitching state.
 */
export async function sealCancelledChunks(db: Db, args: { batchId: string; fence: number }): Promise<number> {
  const r = await sql`
    UPDATE chunks c
    SET status = 'cancelled', fence = c.fence + 1, leased_by = NULL, lease_expires_at = NULL, updated_at = now()
    FROM batches b
    WHERE b.id = c.batch_id AND c.batch_id = ${args.batchId} AND c.status IN ('queued', 'leased')
      AND b.status IN ('cancelling', 'finalizing') AND b.worker_fence = ${args.fence}
  `.execute(db);
  return affectedRows(r);
}

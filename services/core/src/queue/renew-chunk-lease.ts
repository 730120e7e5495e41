import { sql } from "kysely";
import type { Db } from "../db/connect.js";
import type { BatchStatus } from "../db/schema.js";

/**
 * The heartbeat: extends a chunk lease and reports its batch's state, so a runner learns of a
 * cancel or a pause within one beat. Fenced on the token: a holder that was rescued and re-claimed
 * elsewhere gets `undefined` instead of silently extending someone else's lease.
 */
export async function renewChunkLease(
  db: Db,
  args: { batchId: string; idx: number; fence: number; leaseSeconds: number },
): Promise<{ batchStatus: BatchStatus; paused: boolean } | undefined> {
  const { rows } = await sql<{ batch_status: BatchStatus; paused: boolean }>`
    UPDATE chunks c
    SET lease_expires_at = now() + make_interval(secs => ${args.leaseSeconds}), updated_at = now()
    FROM batches b
    WHERE b.id = c.batch_id
      AND c.batch_id = ${args.batchId} AND c.idx = ${args.idx} AND c.fence = ${args.fence} AND c.status = 'leased'
    RETURNING b.status AS batch_status, b.paused_at IS NOT NULL AS paused
  `.execute(db);
  return rows[0] ? { batchStatus: rows[0].batch_status, paused: rows[0].paused } : undefined;
}

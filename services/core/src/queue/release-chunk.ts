import { sql } from "kysely";
import type { Db } from "../db/connect.js";
import { affectedOne } from "./affected.js";

/**
 * Hands a leased chunk back to the queue at once (graceful shutdown, engine gone, failed run)
 * instead of letting another agent wait for the lease to lapse. The checkpoint stays, so the next
 * holder resumes after the last committed result. `failed` (a failed run, an engine outage)
 * counts the claim towards the poison-chunk cap; a graceful hand-back does not. `paused` (its
 * batch was paused) also takes back the claim's attempt: the run was the user's to stop, not a
 * try that went wrong. Fenced: releasing a lost lease is a no-op.
 */
export async function releaseChunk(db: Db, args: { batchId: string; idx: number; fence: number; failed?: boolean; paused?: boolean }): Promise<boolean> {
  const r = await sql`
    UPDATE chunks
    SET status = 'queued', leased_by = NULL, lease_expires_at = NULL, updated_at = now(),
        failures = failures + ${args.failed === true ? 1 : 0},
        attempts = attempts - ${args.paused === true ? 1 : 0}
    WHERE batch_id = ${args.batchId} AND idx = ${args.idx} AND fence = ${args.fence} AND status = 'leased'
  `.execute(db);
  return affectedOne(r);
}

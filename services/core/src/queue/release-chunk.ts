import { sql } from "kysely";
import type { Db } from "../db/connect.js";

/**
 * Hands a leased chunk back to the queue at once (graceful shutdown, engine gone) instead of
 * letting another agent wait for the lease to lapse. The checkpoint stays, so the next holder
 * resumes after the last committed result. Fenced: releasing a lost lease is a no-op.
 */
export async function releaseChunk(db: Db, args: { batchId: string; idx: number; fence: number }): Promise<boolean> {
  const r = await sql`
    UPDATE chunks
    SET status = 'queued', leased_by = NULL, lease_expires_at = NULL, updated_at = now()
    WHERE batch_id = ${args.batchId} AND idx = ${args.idx} AND fence = ${args.fence} AND status = 'leased'
  `.execute(db);
  return Number(r.numAffectedRows ?? 0) === 1;
}

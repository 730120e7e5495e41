import { sql } from "kysely";
import type { Db } from "../db/connect.js";
import { affectedOne } from "./affected.js";

/**
 * Closes a leased chunk of a cancelled batch after its runner committed what had finished.
 * Fenced like every runner write; the uncommitted remainder is simply never run.
 */
export async function closeCancelledChunk(db: Db, args: { batchId: string; idx: number; fence: number }): Promise<boolean> {
  const r = await sql`
    UPDATE chunks
    SET status = 'cancelled', leased_by = NULL, lease_expires_at = NULL, updated_at = now()
    WHERE batch_id = ${args.batchId} AND idx = ${args.idx} AND fence = ${args.fence} AND status = 'leased'
  `.execute(db);
  return affectedOne(r);
}

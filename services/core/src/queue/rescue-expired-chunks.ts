import { sql } from "kysely";
import type { Db } from "../db/connect.js";
import { affectedRows } from "./affected.js";

/**
 * The rescuer: returns chunks whose lease lapsed (dead or partitioned agent) to the queue.
 * Idempotent and safe to run from every agent at once: the WHERE re-checks expiry under the row
 * lock, and the fence is left alone, so the next claim bumps it and locks out the old holder.
 * A lapsed lease is a crashed (or partitioned) run, so it counts towards the poison-chunk cap.
 */
export async function rescueExpiredChunks(db: Db): Promise<number> {
  const r = await sql`
    UPDATE chunks
    SET status = 'queued', leased_by = NULL, lease_expires_at = NULL, failures = failures + 1, updated_at = now()
    WHERE status = 'leased' AND lease_expires_at < now()
  `.execute(db);
  return affectedRows(r);
}

import { sql } from "kysely";
import type { Db } from "../db/connect.js";

/**
 * The rescuer: returns chunks whose lease lapsed (dead or partitioned agent) to the queue.
 * Idempotent and safe to run from every agent at once: the row lock re-checks expiry, and the
 * fence is left alone, so the next claim bumps it and locks out the old holder. A lapsed lease
 * is a crashed (or partitioned) run, so it counts towards the poison-chunk cap. Each rescued
 * chunk gets its `lease_lost` entry from the same statement, naming the holder that lost it.
 */
export async function rescueExpiredChunks(db: Db): Promise<number> {
  const { rows } = await sql<{ idx: number }>`
    WITH lapsed AS (
      SELECT batch_id, idx, leased_by FROM chunks
      WHERE status = 'leased' AND lease_expires_at < now()
      FOR UPDATE SKIP LOCKED
    ), rescued AS (
      UPDATE chunks c
      SET status = 'queued', leased_by = NULL, lease_expires_at = NULL, failures = c.failures + 1, updated_at = now()
      FROM lapsed
      WHERE c.batch_id = lapsed.batch_id AND c.idx = lapsed.idx
      RETURNING c.batch_id, c.idx, lapsed.leased_by
    ), events AS (
      INSERT INTO batch_events (batch_id, kind, data)
      SELECT batch_id, 'lease_lost', jsonb_build_object('chunk', idx, 'agent', leased_by) FROM rescued
    )
    SELECT idx FROM rescued
  `.execute(db);
  return rows.length;
}

import { sql } from "kysely";
import type { Db } from "../db/connect.js";

/**
 * Moves every `in_progress` batch whose `expires_at` passed to `finalizing` with `expired_at`
 * set, and closes its queued chunks so nobody claims them. Running chunks learn of it at their
 * next heartbeat and stop like a cancel; the finalizer then writes a `batch_expired` line for
 * every request never committed and publishes the batch as `expired`. Why `finalizing` rather
 * than a new state: to clients it is exactly that (results are being stitched), and every
 * statement that protects a stitching batch (its input file, cancel, claims) already knows it.
 * Why one statement: the data-modifying CTE closes the chunks of exactly the batches it moved;
 * run by every agent at once, the row lock makes each batch move once. Returns their ids.
 */
export async function expireBatches(db: Db): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    WITH expired AS (
      UPDATE batches
      SET status = 'finalizing', finalizing_at = now(), expired_at = now()
      WHERE status = 'in_progress' AND expires_at < now()
      RETURNING id
    ), closed AS (
      UPDATE chunks c
      SET status = 'cancelled', updated_at = now()
      FROM expired
      WHERE c.batch_id = expired.id AND c.status = 'queued'
      RETURNING c.idx
    )
    SELECT id FROM expired
  `.execute(db);
  return rows.map((r) => r.id);
}

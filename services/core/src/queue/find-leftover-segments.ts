import { sql } from "kysely";
import type { Db } from "../db/connect.js";
import { PUBLISHED_BATCH_STATUSES } from "../domain/batch-state.js";

/**
 * Batches already published (completed, cancelled, expired) that still have segment rows: their
 * finalizer died between publishing the result and deleting the segments. The janitor deletes
 * the objects, then the rows. Why from `segments` outward: that table only holds unfinished
 * work, so the scan stays small however many batches have ever finished.
 */
export async function findLeftoverSegments(db: Db, limit: number): Promise<string[]> {
  const { rows } = await sql<{ batch_id: string }>`
    SELECT DISTINCT s.batch_id
    FROM segments s JOIN batches b ON b.id = s.batch_id
    WHERE b.status IN (${sql.join(PUBLISHED_BATCH_STATUSES.map((s) => sql.lit(s)))})
    LIMIT ${limit}
  `.execute(db);
  return rows.map((r) => r.batch_id);
}

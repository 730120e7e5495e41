import type { Db } from "../db/connect.js";
import type { OutputPartRow } from "../db/schema.js";

/**
 * Every output part recorded for a batch, claimed or uploaded, in no particular order. Why all
 * of them: the finalizer decides which are still valid against the batch's current segments.
 */
export async function outputPartRecords(db: Db, batchId: string): Promise<OutputPartRow[]> {
  return db.selectFrom("output_parts").selectAll().where("batch_id", "=", batchId).execute();
}

import type { Db } from "../db/connect.js";
import type { BatchErrorEntry } from "../db/schema.js";

/**
 * Fails a batch still `validating` with `errors`, before anyone validated it: a serverless batch
 * whose object's own settings (its user metadata) were refused. Why a batch at all rather than
 * nothing: the user who has only S3 reads the error in status.json, and API clients see it too.
 * The status trigger writes the timeline's `final` entry. Returns whether it moved.
 */
export async function failNewBatch(db: Db, batchId: string, errors: BatchErrorEntry[]): Promise<boolean> {
  const r = await db
    .updateTable("batches")
    .set({ status: "failed", failed_at: new Date(), errors: JSON.stringify(errors) })
    .where("id", "=", batchId)
    .where("status", "=", "validating")
    .executeTakeFirst();
  return r.numUpdatedRows === 1n;
}

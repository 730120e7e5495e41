import type { Db } from "../db/connect.js";
import type { S3ObjectOutcome } from "../db/schema.js";

/**
 * Settles a claimed landed object: the batch it started, or why none started. Why guarded on
 * `outcome IS NULL`: an acceptor whose claim lapsed mid-way must not overwrite the settlement of
 * the one that took the row over; the caller learns from the count whether it was first.
 * `db` is the transaction that created the batch, so a row is settled exactly when its batch exists.
 */
export async function settleLandedObject(
  db: Db,
  o: { bucket: string; key: string; etag: string; outcome: S3ObjectOutcome; batchId: string | null; error: string | null },
): Promise<boolean> {
  const r = await db
    .updateTable("s3_objects")
    .set({ outcome: o.outcome, batch_id: o.batchId, error: o.error, claimed_until: null })
    .where("bucket", "=", o.bucket)
    .where("key", "=", o.key)
    .where("etag", "=", o.etag)
    .where("outcome", "is", null)
    .executeTakeFirst();
  return r.numUpdatedRows === 1n;
}

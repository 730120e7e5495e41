import type { Db } from "../db/connect.js";
import type { LandedObject } from "../domain/landed-object.js";

/**
 * Records landed object versions, returning how many were new. Why ON CONFLICT DO NOTHING on the
 * unique (bucket, key, etag) index, in one statement: events arrive at least once, out of order
 * and on several replicas at the same moment, and pollers list the same objects again; a
 * check-then-insert would let two of them both see "new" and start two batches.
 */
export async function recordLandedObjects(db: Db, objects: LandedObject[]): Promise<number> {
  if (objects.length === 0) return 0;
  const rows = await db
    .insertInto("s3_objects")
    .values(objects.map((o) => ({ bucket: o.bucket, key: o.key, etag: o.etag, version_id: o.versionId, size: o.size })))
    .onConflict((oc) => oc.columns(["bucket", "key", "etag"]).doNothing())
    .returning("key")
    .execute();
  return rows.length;
}

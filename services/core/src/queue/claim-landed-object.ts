import { sql } from "kysely";
import type { Db } from "../db/connect.js";
import type { S3ObjectsTable } from "../db/schema.js";
import type { Selectable } from "kysely";

/** A landed object the acceptor holds, with how many claims it has had, this one included. */
export type ClaimedLandedObject = Pick<Selectable<S3ObjectsTable>, "bucket" | "key" | "etag" | "version_id" | "size" | "attempts">;

/**
 * Claims the oldest unsettled landed object for `leaseSeconds`, counting the claim. Why SKIP
 * LOCKED and a lapsing claim: every API replica runs an acceptor; a replica that dies holding a
 * row leaves it to the next claim once its time passes, and the count bounds the retries.
 */
export async function claimLandedObject(db: Db, args: { leaseSeconds: number }): Promise<ClaimedLandedObject | undefined> {
  const { rows } = await sql<ClaimedLandedObject>`
    WITH next AS (
      SELECT bucket, key, etag FROM s3_objects
      WHERE outcome IS NULL AND (claimed_until IS NULL OR claimed_until < now())
      ORDER BY first_seen_at
      LIMIT 1
      FOR UPDATE SKIP LOCKED
    )
    UPDATE s3_objects o
    SET attempts = o.attempts + 1, claimed_until = now() + make_interval(secs => ${args.leaseSeconds})
    FROM next
    WHERE o.bucket = next.bucket AND o.key = next.key AND o.etag = next.etag
    RETURNING o.bucket, o.key, o.etag, o.version_id, o.size, o.attempts
  `.execute(db);
  return rows[0];
}

import type { Db } from "../db/connect.js";

/**
 * The S3 key of a batch's input file and the ETag it was validated against (null for batches
 * validated before ETags were kept), or undefined when the batch or its file row is gone.
 * Why: a chunk row carries only byte offsets; the run reads its range from the object the
 * batch was validated against, so it asks for the key and its pin once at the start of every run.
 */
export async function batchInputKey(db: Db, batchId: string): Promise<{ key: string; etag: string | null; fileId: string } | undefined> {
  const row = await db
    .selectFrom("batches")
    .innerJoin("files", "files.id", "batches.input_file_id")
    .select(["files.s3_key", "batches.input_etag", "files.id"])
    .where("batches.id", "=", batchId)
    .executeTakeFirst();
  return row && { key: row.s3_key, etag: row.input_etag, fileId: row.id };
}

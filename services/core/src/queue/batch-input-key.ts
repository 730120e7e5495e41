import type { Db } from "../db/connect.js";

/**
 * The S3 key of a batch's input file, or undefined when the batch or its file row is gone.
 * Why: a chunk row carries only byte offsets; the run reads its range from the object the
 * batch was validated against, so it asks for the key once at the start of every run.
 */
export async function batchInputKey(db: Db, batchId: string): Promise<string | undefined> {
  const row = await db
    .selectFrom("batches")
    .innerJoin("files", "files.id", "batches.input_file_id")
    .select("files.s3_key")
    .where("batches.id", "=", batchId)
    .executeTakeFirst();
  return row?.s3_key;
}

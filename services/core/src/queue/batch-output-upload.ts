import type { Db } from "../db/connect.js";

/**
 * The batch's output multipart upload id, or null when no chunk has started one. Why a plain
 * read: the id is written once (`claimOutputUpload`), so whoever reads it after losing that race,
 * or at finalize, sees the winner's.
 */
export async function batchOutputUpload(db: Db, batchId: string): Promise<string | null> {
  const row = await db.selectFrom("batches").select("output_upload_id").where("id", "=", batchId).executeTakeFirst();
  return row?.output_upload_id ?? null;
}

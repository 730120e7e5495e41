import { sql } from "kysely";
import type { Db } from "../db/connect.js";
import { affectedOne } from "./affected.js";

/**
 * Makes `uploadId` the batch's one multipart upload for its output, unless another agent got
 * there first. Why a conditional UPDATE: agents completing chunks of one batch at the same moment
 * each create an upload; exactly one write lands, and the losers abort theirs and use the winner's.
 * Only while the batch runs or finalizes: a cancelled or published batch gets no new upload.
 */
export async function claimOutputUpload(db: Db, args: { batchId: string; uploadId: string }): Promise<boolean> {
  const r = await sql`
    UPDATE batches SET output_upload_id = ${args.uploadId}
    WHERE id = ${args.batchId} AND output_upload_id IS NULL AND status IN ('in_progress', 'finalizing')
  `.execute(db);
  return affectedOne(r);
}

import type { Db } from "../db/connect.js";

/**
 * The object keys recorded for one segment commit (a chunk's `seq`).
 * Why: a commit fenced out after its objects were written must delete them, unless an earlier
 * try of the same commit did land (its reply lost with the connection) and rows name them.
 */
export async function segmentKeys(db: Db, segment: { batchId: string; idx: number; seq: number }): Promise<string[]> {
  const rows = await db
    .selectFrom("segments")
    .select("s3_key")
    .where("batch_id", "=", segment.batchId)
    .where("chunk_idx", "=", segment.idx)
    .where("seq", "=", segment.seq)
    .execute();
  return rows.map((r) => r.s3_key);
}

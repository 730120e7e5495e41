import type { Db } from "../db/connect.js";

/**
 * The committed, non-empty output segments of chunks first..last, in (chunk, seq) order, as
 * object keys and sizes. Why non-empty only: an empty segment adds no byte to a part, and S3
 * parts are built by streaming these in order.
 */
export async function runOutputSegments(db: Db, args: { batchId: string; first: number; last: number }): Promise<{ key: string; size: number }[]> {
  const rows = await db
    .selectFrom("segments")
    .select(["s3_key", "bytes"])
    .where("batch_id", "=", args.batchId)
    .where("chunk_idx", ">=", args.first)
    .where("chunk_idx", "<=", args.last)
    .where("kind", "=", "output")
    .where("bytes", ">", 0)
    .orderBy("chunk_idx")
    .orderBy("seq")
    .execute();
  return rows.map((r) => ({ key: r.s3_key, size: r.bytes }));
}

import type { Db } from "../db/connect.js";
import type { SegmentRow } from "../db/schema.js";

/** A committed segment as the finalizer stitches and counts it. */
export type BatchSegment = Pick<SegmentRow, "kind" | "chunk_idx" | "s3_key" | "bytes" | "lines">;

/**
 * Every committed segment of a batch, output and error alike, in (chunk, seq) order. Why that
 * order: it is input order, so the stitch concatenates them as they are. Read once the batch is
 * claimed for finalizing, when no run can commit to it any more.
 */
export async function batchSegments(db: Db, batchId: string): Promise<BatchSegment[]> {
  return db
    .selectFrom("segments")
    .select(["kind", "chunk_idx", "s3_key", "bytes", "lines"])
    .where("batch_id", "=", batchId)
    .orderBy("chunk_idx")
    .orderBy("seq")
    .execute();
}

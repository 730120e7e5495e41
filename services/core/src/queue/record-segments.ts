import type { Transaction } from "kysely";
import type { Database } from "../db/schema.js";
import type { SegmentCommit } from "./commit-segment.js";

/**
 * Records a committed segment's objects for the stitcher. Runs after `advanceCheckpoint`
 * succeeded in the same transaction, so only fenced, in-order segments ever appear here;
 * the primary key (batch, kind, chunk, seq) rejects a second copy outright.
 */
export async function recordSegments(tx: Transaction<Database>, c: SegmentCommit): Promise<void> {
  if (c.objects.length === 0) return;
  await tx
    .insertInto("segments")
    .values(
      c.objects.map((o) => ({
        batch_id: c.batchId,
        chunk_idx: c.idx,
        seq: c.seq,
        kind: o.kind,
        s3_key: o.key,
        bytes: o.bytes,
        lines: o.lines,
      })),
    )
    .execute();
}

import { sql } from "kysely";
import type { Db } from "../db/connect.js";
import type { BatchStatus } from "../domain/batch-state.js";
import type { SegmentRef } from "../storage/part-plan.js";

/** A batch's status and the output segments that make the readable prefix of its results. */
export interface CommittedOutputPrefix {
  status: BatchStatus;
  segments: SegmentRef[];
}

/**
 * The batch's status and its committed, non-empty output segments in (chunk, seq) order, up to
 * and including the first chunk that is not finished (done or closed): input order, so their
 * concatenation is a prefix of the output the finalizer will publish. Why one statement: the
 * status and the list come from one snapshot, so a finalizer publishing (and then deleting the
 * segments) in between can never pair a list from before it with a status from after it.
 * Undefined when there is no such batch.
 */
export async function committedOutputPrefix(db: Db, batchId: string): Promise<CommittedOutputPrefix | undefined> {
  const { rows } = await sql<{ status: BatchStatus; s3_key: string | null; bytes: number | null }>`
    SELECT b.status, s.s3_key, s.bytes
    FROM batches b
    LEFT JOIN segments s ON s.batch_id = b.id AND s.kind = 'output' AND s.bytes > 0
      AND s.chunk_idx <= COALESCE(
        (SELECT min(c.idx) FROM chunks c WHERE c.batch_id = b.id AND c.status NOT IN ('done', 'cancelled')),
        s.chunk_idx)
    WHERE b.id = ${batchId}
    ORDER BY s.chunk_idx, s.seq
  `.execute(db);
  const first = rows[0];
  if (!first) return undefined;
  return { status: first.status, segments: rows.flatMap((r) => (r.s3_key === null ? [] : [{ key: r.s3_key, size: Number(r.bytes) }])) };
}

import { findFile, unfinishedChunks, type BatchRow, type Bucket, type Db } from "@barge/core";
import { inputLines, isRequestLine, parseRequest } from "../run/input-lines.js";
import { buildResultLine } from "../run/result-line.js";
import { commitSegment, type PendingResult } from "../run/segment-writer.js";

export interface ExpiredLinesDeps extends Bucket {
  db: Db;
  /** Error lines per segment (SEGMENT_MAX_LINES). */
  segmentMaxLines: number;
}

/**
 * Writes a `batch_expired` error line for every request of an expired batch that no run
 * committed, chunk by chunk in input order, each chunk's lines as segments after its committed
 * ones, so the ordinary stitch merges them with the results and other errors in input order.
 * The chunks were sealed first, so only this finalizer can commit to them: every segment is
 * fenced on its batch lease and the chunk's checkpoint, and a crashed fill is resumed from
 * there. Memory holds one segment. Every read is pinned to the ETag validation read, so an object
 * replaced since then throws `InputChanged` rather than naming requests that were never validated.
 * Returns how many lines it wrote.
 */
export async function writeExpiredLines(deps: ExpiredLinesDeps, batch: BatchRow, workerFence: number): Promise<number> {
  const open = await unfinishedChunks(deps.db, batch.id);
  if (open.length === 0) return 0;
  const file = await findFile(deps.db, batch.input_file_id);
  if (!file) throw new Error(`input file ${batch.input_file_id} of expired batch ${batch.id} is gone`);
  const outcome = {
    kind: "failure",
    code: "batch_expired",
    message: `The batch's completion window (${batch.completion_window}) expired before this request was processed.`,
    attempts: 0,
  } as const;

  let written = 0;
  for (const chunk of open) {
    const ref = { batchId: batch.id, idx: chunk.idx, fence: chunk.fence };
    let seq = chunk.next_seq;
    let requestIndex = chunk.request_start + chunk.committed;
    let pending: PendingResult[] = [];
    const flush = async () => {
      await commitSegment(deps, ref, seq++, pending, { finalizerFence: workerFence });
      written += pending.length;
      pending = [];
    };
    for await (const line of inputLines(deps, file.s3_key, { offset: chunk.next_offset, lineNo: chunk.next_line }, chunk.end_offset, { ifMatch: batch.input_etag })) {
      // Blank lines were skipped by validation too, so request numbering matches the chunk index.
      if (!isRequestLine(line)) continue;
      const result = buildResultLine(line.customId ?? parseRequest(line.text).customId, outcome);
      pending.push({ result, requestIndex: requestIndex++, end: line.end, lineNo: line.lineNo });
      if (pending.length === deps.segmentMaxLines) await flush();
    }
    if (pending.length > 0) await flush();
  }
  return written;
}

import {
  abortQuietly,
  batchOutputUpload,
  claimOutputPart,
  claimOutputUpload,
  createUpload,
  keys,
  lockBatchOutputParts,
  MAX_PART_BYTES,
  MAX_PARTS,
  MIN_PART_BYTES,
  otherChunksLeft,
  outputPartChunks,
  PART_BUILDING_BATCH_STATUSES,
  recordOutputPart,
  runOutputSegments,
  uploadSegmentsPart,
  type Db,
  type OutputPartChunk,
} from "@barge/core";
import { partNumber, sourceDigest, type ChunkPartDeps } from "./part-records.js";

// A batch's output object is one multipart upload. Its parts each cover a run of consecutive
// chunks (part number = the run's first chunk + 1, so parts stay in chunk order with gaps), and
// the agents upload them while the rest of the batch still runs: a run is uploaded as soon as its
// chunks are all committed and it reaches S3's 5 MiB part minimum, or the batch's last chunk. A
// chunk of 5 MiB or more is a run of its own. The finalizer then only completes the upload: no
// byte of the output moves at finalize time.

const CONTENT_TYPE = "application/jsonl";

/** The batch's output upload: the one already chosen, or a new one unless another agent wins the race. */
async function outputUpload(deps: ChunkPartDeps, batchId: string, key: string, current: string | null): Promise<string | undefined> {
  if (current) return current;
  const uploadId = await createUpload(deps, key, CONTENT_TYPE);
  if (await claimOutputUpload(deps.db, { batchId, uploadId })) return uploadId;
  await abortQuietly(deps, key, uploadId);
  return (await batchOutputUpload(deps.db, batchId)) ?? undefined;
}

/** A run of chunks to upload as one part, and the parts it absorbs. */
export interface RunChoice {
  first: number;
  last: number;
  bytes: number;
  replaces: number[];
}

/**
 * The parts chunk `idx`'s completion makes, given every chunk of its batch in order. The maximal
 * run of complete, uncovered chunks around it is cut, in order, into parts of at least S3's part
 * minimum (a chunk that size alone is a part of its own). What is left at the run's end becomes
 * a part too when it ends the batch (the last part may be small), or joins the part before it
 * when the chunk after it is covered already; a whole run too small that can no longer grow
 * (covered or the batch's edge on both sides) joins the part after it, which is then uploaded
 * again as one part. Anything else waits for its neighbours. Empty when there is nothing to
 * upload yet or a part cannot hold it (the finalizer stitches then).
 */
export function chooseParts(chunks: OutputPartChunk[], idx: number): RunChoice[] {
  const at = chunks.findIndex((c) => c.idx === idx);
  const free = (i: number) => chunks[i]!.complete && chunks[i]!.part === null;
  if (at < 0 || !free(at)) return [];
  let a = at;
  let b = at;
  while (a > 0 && free(a - 1)) a--;
  while (b < chunks.length - 1 && free(b + 1)) b++;
  const endsBatch = b === chunks.length - 1;
  const next = endsBatch ? null : chunks[b + 1]!.part;

  // A part is named after its first chunk with output; chunks without any lead into nothing.
  const piece = (from: number, to: number, bytes: number, replaces: number[] = []): RunChoice => {
    while (chunks[from]!.bytes === 0) from++;
    return { first: chunks[from]!.idx, last: chunks[to]!.idx, bytes, replaces };
  };
  const parts: RunChoice[] = [];
  let start = a;
  let bytes = 0;
  for (let i = a; i <= b; i++) {
    bytes += chunks[i]!.bytes;
    if (bytes < MIN_PART_BYTES) continue;
    parts.push(piece(start, i, bytes));
    start = i + 1;
    bytes = 0;
  }
  if (bytes > 0) {
    const closedLeft = a === 0 || chunks[a - 1]!.part !== null;
    const end = next ? chunks.findIndex((c) => c.idx === next.last) : -1;
    if (endsBatch) parts.push(piece(start, b, bytes));
    else if (next && parts.length > 0) Object.assign(parts.at(-1)!, { last: chunks[b]!.idx, bytes: parts.at(-1)!.bytes + bytes });
    else if (next && closedLeft && next.first === chunks[b + 1]!.idx && end >= 0) {
      const after = chunks.slice(b + 1, end + 1).reduce((n, c) => n + c.bytes, 0);
      parts.push(piece(start, end, bytes + after, [next.first]));
    }
  }
  if (parts.some((p) => p.bytes > MAX_PART_BYTES)) return [];
  return parts.filter((p) => partNumber(p.first) <= MAX_PARTS);
}

/** A part uploaded and recorded for a chunk's completion: its run of chunks and size. */
export interface UploadedPart {
  first: number;
  last: number;
  bytes: number;
}

/**
 * Chooses, with the batch row locked so agents decide one at a time, the parts a completed chunk
 * makes (see `chooseParts`) and claims their chunks; then uploads each one's committed output
 * segments, streamed in order, as that part of the batch's output upload, and records it.
 * Returns the parts recorded; when one fails, the rest are still tried and the first failure thrown.
 */
export async function uploadChunkPart(deps: ChunkPartDeps, ref: { batchId: string; idx: number }): Promise<UploadedPart[]> {
  const claimed = await deps.db.transaction().execute(async (tx) => {
    const batch = await lockBatchOutputParts(tx, ref.batchId);
    if (!batch || !(PART_BUILDING_BATCH_STATUSES as readonly string[]).includes(batch.status)) return undefined;
    const runs = chooseParts(await outputPartChunks(tx, ref.batchId), ref.idx);
    for (const run of runs) {
      await claimOutputPart(tx, { batchId: ref.batchId, first: run.first, last: run.last, partNumber: partNumber(run.first), bytes: run.bytes, replaces: run.replaces });
    }
    return { runs, batch };
  });
  if (!claimed || claimed.runs.length === 0) return [];
  const { runs, batch } = claimed;
  const key = keys.output(batch.tenant, ref.batchId, batch.resultsPrefix);
  const uploadId = await outputUpload(deps, ref.batchId, key, batch.outputUploadId);
  if (!uploadId) return [];
  const uploaded: UploadedPart[] = [];
  // One at a time: a completion rarely makes more than one part, and each streams its segments.
  // A part that fails does not stop the next: each is claimed, so nobody else would upload it.
  let failure: unknown;
  for (const run of runs) {
    try {
      const segments = await runOutputSegments(deps.db, { batchId: ref.batchId, first: run.first, last: run.last });
      const bytes = segments.reduce((n, s) => n + s.size, 0);
      const etag = await uploadSegmentsPart(deps, { key, uploadId, partNumber: partNumber(run.first), segments });
      const recorded = await recordOutputPart(deps.db, {
        batchId: ref.batchId,
        first: run.first,
        last: run.last,
        uploadId,
        partNumber: partNumber(run.first),
        etag,
        bytes,
        sourceDigest: sourceDigest(segments),
      });
      if (recorded) uploaded.push({ first: run.first, last: run.last, bytes });
    } catch (err) {
      failure ??= err;
    }
  }
  if (failure !== undefined) throw failure;
  return uploaded;
}

/** Whether every other chunk of the batch is done, so this one's completion will start finalizing. */
async function othersDone(db: Db, ref: { batchId: string; idx: number }): Promise<boolean> {
  return (await otherChunksLeft(db, ref)) === 0;
}

/**
 * Called once a chunk's every result is committed, just before it is marked done: uploads the
 * parts its completion makes, if any (see `uploadChunkPart`), and never throws, since a missing
 * part is only rebuilt at finalize, or the batch stitched the old way. The batch's last chunk
 * waits for its upload, so that the batch turns `finalizing` with every byte in place; any other
 * uploads in the background while the agent goes on with the next chunk.
 */
export async function buildChunkPart(deps: ChunkPartDeps, ref: { batchId: string; idx: number }): Promise<void> {
  const started = performance.now();
  const last = await othersDone(deps.db, ref).catch(() => false);
  const work = uploadChunkPart(deps, ref).then(
    (parts) => {
      for (const p of parts) {
        deps.log.info(
          { batch: ref.batchId, chunk: ref.idx, first: p.first, lastChunk: p.last, bytes: p.bytes, last, ms: Math.round(performance.now() - started) },
          "uploaded chunk part",
        );
      }
    },
    (err: unknown) => deps.log.warn({ err, batch: ref.batchId, chunk: ref.idx }, "chunk part upload failed; the finalizer rebuilds it or stitches"),
  );
  if (last) await work;
}

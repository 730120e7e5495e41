import { createHash } from "node:crypto";
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
} from "@aws-sdk/client-s3";
import {
  abortQuietly,
  claimOutputPart,
  claimOutputUpload,
  isMissingUpload,
  isRefusal,
  keys,
  lockBatchOutputParts,
  MAX_PART_BYTES,
  MAX_PARTS,
  MIN_PART_BYTES,
  outputPartChunks,
  recordOutputPart,
  runPool,
  uploadSegmentsPart,
  type Bucket,
  type Db,
  type Logger,
  type OutputPartChunk,
  type OutputPartRow,
  type SegmentRef,
  type StitchResult,
} from "@barge/core";

// A batch's output object is one multipart upload. Its parts each cover a run of consecutive
// chunks (part number = the run's first chunk + 1, so parts stay in chunk order with gaps), and
// the agents upload them while the rest of the batch still runs: a run is uploaded as soon as its
// chunks are all committed and it reaches S3's 5 MiB part minimum, or the batch's last chunk. A
// chunk of 5 MiB or more is a run of its own. The finalizer then only completes the upload: no
// byte of the output moves at finalize time.

export interface ChunkPartDeps extends Bucket {
  db: Db;
  log: Logger;
}

/** Parts rebuilt at once when the finalizer has to redo some. */
const REBUILD_CONCURRENCY = 4;
const CONTENT_TYPE = "application/jsonl";
/** Batch states in which agents add parts to the output upload. */
const OPEN_STATES = ["in_progress", "finalizing"];

/** A chunk's output segments, in order, and their total size. */
export interface ChunkOutput {
  idx: number;
  segments: SegmentRef[];
  bytes: number;
}

/** Digest of what a part is built from (its segments' keys and sizes, in order): a changed chunk output changes it. */
function sourceDigest(segments: SegmentRef[]): string {
  const h = createHash("sha256");
  for (const s of segments) h.update(`${s.key}\t${s.size}\n`);
  return h.digest("hex");
}

/** Part numbers are 1-based, chunk indexes 0-based: a part is numbered after its first chunk. */
function partNumber(firstChunk: number): number {
  return firstChunk + 1;
}

/** The committed, non-empty output segments of chunks first..last, in (chunk, seq) order. */
async function runSegments(db: Db, batchId: string, first: number, last: number): Promise<SegmentRef[]> {
  const rows = await db
    .selectFrom("segments")
    .select(["s3_key", "bytes"])
    .where("batch_id", "=", batchId)
    .where("chunk_idx", ">=", first)
    .where("chunk_idx", "<=", last)
    .where("kind", "=", "output")
    .where("bytes", ">", 0)
    .orderBy("chunk_idx")
    .orderBy("seq")
    .execute();
  return rows.map((r) => ({ key: r.s3_key, size: r.bytes }));
}

/** The batch's output upload: the one already chosen, or a new one unless another agent wins the race. */
async function outputUpload(deps: ChunkPartDeps, batchId: string, key: string, current: string | null): Promise<string | undefined> {
  if (current) return current;
  const created = await deps.s3.send(new CreateMultipartUploadCommand({ Bucket: deps.bucket, Key: key, ContentType: CONTENT_TYPE }));
  if (!created.UploadId) throw new Error(`CreateMultipartUpload for ${key} returned no UploadId`);
  if (await claimOutputUpload(deps.db, { batchId, uploadId: created.UploadId })) return created.UploadId;
  await abortQuietly(deps, key, created.UploadId);
  const row = await deps.db.selectFrom("batches").select("output_upload_id").where("id", "=", batchId).executeTakeFirst();
  return row?.output_upload_id ?? undefined;
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
    if (!batch || !OPEN_STATES.includes(batch.status)) return undefined;
    const runs = chooseParts(await outputPartChunks(tx, ref.batchId), ref.idx);
    for (const run of runs) {
      await claimOutputPart(tx, { batchId: ref.batchId, first: run.first, last: run.last, partNumber: partNumber(run.first), bytes: run.bytes, replaces: run.replaces });
    }
    return { runs, batch };
  });
  if (!claimed || claimed.runs.length === 0) return [];
  const { runs, batch } = claimed;
  const key = keys.output(batch.tenant, ref.batchId);
  const uploadId = await outputUpload(deps, ref.batchId, key, batch.outputUploadId);
  if (!uploadId) return [];
  const uploaded: UploadedPart[] = [];
  // One at a time: a completion rarely makes more than one part, and each streams its segments.
  // A part that fails does not stop the next: each is claimed, so nobody else would upload it.
  let failure: unknown;
  for (const run of runs) {
    try {
      const segments = await runSegments(deps.db, ref.batchId, run.first, run.last);
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
  const left = await db
    .selectFrom("chunks")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("batch_id", "=", ref.batchId)
    .where("idx", "<>", ref.idx)
    .where("status", "<>", "done")
    .executeTakeFirstOrThrow();
  return Number(left.n) === 0;
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

/** The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, then "-" and the part count. */
function multipartEtag(etags: string[]): string | undefined {
  const md5s = etags.map((e) => e.replace(/"/g, ""));
  if (!md5s.every((m) => /^[0-9a-f]{32}$/i.test(m))) return undefined;
  const h = createHash("md5");
  for (const m of md5s) h.update(Buffer.from(m, "hex"));
  return `"${h.digest("hex")}-${md5s.length}"`;
}

export interface AssembleInput {
  batchId: string;
  destKey: string;
  /** The batch's committed output segments in (chunk, seq) order. */
  segments: (SegmentRef & { chunk: number })[];
}

/** How the finalize went through chunk parts, or why it could not. */
export type Assembled = { result: StitchResult; rebuiltParts: number } | { result?: undefined; reason: string };

/**
 * One part of the output as the finalizer plans it: chunks first..last (part number first + 1)
 * and their outputs; a recorded part kept as is carries its ETag, one to upload has none yet.
 */
export interface Piece {
  first: number;
  last: number;
  chunks: ChunkOutput[];
  bytes: number;
  etag?: string;
}

function pieceOf(first: number, last: number, chunks: ChunkOutput[], etag?: string): Piece {
  return { first, last, chunks, bytes: chunks.reduce((n, c) => n + c.bytes, 0), ...(etag === undefined ? {} : { etag }) };
}

const pieceSegments = (p: Piece): SegmentRef[] => p.chunks.flatMap((c) => c.segments);

type OutputPartRecord = Pick<OutputPartRow, "first_chunk" | "last_chunk" | "upload_id" | "part_number" | "etag" | "bytes" | "source_digest">;

/**
 * The parts the output is completed from, in order, given its chunks with output: every recorded
 * part still valid (on the batch's upload, built from its chunks' current segments, not
 * overlapping an earlier one) kept; the chunks between them grouped into parts to upload; and
 * any part but the last that is below S3's minimum merged with the one after it, which is then
 * uploaded again.
 */
export function planPieces(chunks: ChunkOutput[], records: OutputPartRecord[], uploadId: string): Piece[] {
  const kept: Piece[] = [];
  for (const r of [...records].sort((x, y) => x.first_chunk - y.first_chunk)) {
    if (kept.length > 0 && r.first_chunk <= kept.at(-1)!.last) continue;
    const piece = pieceOf(r.first_chunk, r.last_chunk, chunks.filter((c) => c.idx >= r.first_chunk && c.idx <= r.last_chunk), r.etag ?? undefined);
    const valid =
      r.etag !== null &&
      r.upload_id === uploadId &&
      r.part_number === partNumber(r.first_chunk) &&
      piece.chunks.length > 0 &&
      r.bytes === piece.bytes &&
      r.source_digest === sourceDigest(pieceSegments(piece));
    if (valid) kept.push(piece);
  }
  const pieces: Piece[] = [];
  let loose: ChunkOutput[] = [];
  const flush = () => {
    if (loose.length > 0) pieces.push(pieceOf(loose[0]!.idx, loose.at(-1)!.idx, loose));
    loose = [];
  };
  for (const c of chunks) {
    const home = kept.find((p) => c.idx >= p.first && c.idx <= p.last);
    if (!home) {
      loose.push(c);
      continue;
    }
    flush();
    if (pieces.at(-1) !== home) pieces.push(home);
  }
  flush();
  for (let i = 0; i < pieces.length - 1; ) {
    const [a, b] = [pieces[i]!, pieces[i + 1]!];
    if (a.bytes >= MIN_PART_BYTES) i++;
    else pieces.splice(i, 2, pieceOf(a.first, b.last, [...a.chunks, ...b.chunks]));
  }
  return pieces;
}

/**
 * Completes the batch's output upload from the parts its chunks uploaded while it ran, after
 * rebuilding the few that are missing or stale (not built from their chunks' current segments)
 * or that a valid order of parts needs, and checks the object's size. When that cannot make the
 * object (S3's part limits, more to rebuild than already there, S3 refusing a request), the
 * upload is aborted and the reason returned: the caller then stitches the segments the old way.
 * Other failures are thrown, with the upload left in place for the next finalizer.
 */
export async function assembleFromChunkParts(deps: ChunkPartDeps, input: AssembleInput): Promise<Assembled> {
  const row = await deps.db.selectFrom("batches").select("output_upload_id").where("id", "=", input.batchId).executeTakeFirst();
  const uploadId = row?.output_upload_id ?? null;
  if (!uploadId) return { reason: "no chunk parts were uploaded" };
  const key = input.destKey;
  const giveUp = async (reason: string): Promise<Assembled> => {
    await abortQuietly(deps, key, uploadId);
    return { reason };
  };

  const chunks: ChunkOutput[] = [];
  for (const s of input.segments) {
    if (s.size === 0) continue;
    let c = chunks.at(-1);
    if (c?.idx !== s.chunk) chunks.push((c = { idx: s.chunk, segments: [], bytes: 0 }));
    c.segments.push({ key: s.key, size: s.size });
    c.bytes += s.size;
  }
  if (chunks.length === 0) return giveUp("the output is empty");

  try {
    const records = await deps.db.selectFrom("output_parts").selectAll().where("batch_id", "=", input.batchId).execute();
    const pieces = planPieces(chunks, records, uploadId);
    if (pieces.some((p) => p.bytes > MAX_PART_BYTES || partNumber(p.first) > MAX_PARTS)) {
      return await giveUp("an output part would exceed S3's part limits");
    }
    const stale = pieces.filter((p) => p.etag === undefined);
    // Rebuilding moves bytes just as the stitch does, which copies large segments server-side instead.
    if (stale.length > pieces.length - stale.length) return await giveUp(`${stale.length} of ${pieces.length} output parts are missing or stale`);

    await runPool(stale, REBUILD_CONCURRENCY, async (p, signal) => {
      const segments = pieceSegments(p);
      p.etag = await uploadSegmentsPart(deps, { key, uploadId, partNumber: partNumber(p.first), segments }, signal);
      await recordOutputPart(deps.db, {
        batchId: input.batchId,
        first: p.first,
        last: p.last,
        uploadId,
        partNumber: partNumber(p.first),
        etag: p.etag,
        bytes: p.bytes,
        sourceDigest: sourceDigest(segments),
      });
    });

    const total = pieces.reduce((n, p) => n + p.bytes, 0);
    const parts = pieces.map((p) => ({ PartNumber: partNumber(p.first), ETag: p.etag as string }));
    try {
      await deps.s3.send(new CompleteMultipartUploadCommand({ Bucket: deps.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
    } catch (err) {
      if (!isMissingUpload(err)) throw err;
      // A finalizer that completed this upload and died before publishing left exactly this object.
      const head = await deps.s3.send(new HeadObjectCommand({ Bucket: deps.bucket, Key: key })).catch(() => undefined);
      const expected = multipartEtag(parts.map((p) => p.ETag));
      if (!head || head.ContentLength !== total || expected === undefined || head.ETag !== expected) return { reason: "the output upload is gone" };
    }
    // RGW 16 answers CompleteMultipartUpload with an empty ETag; HEAD has the real one.
    const head = await deps.s3.send(new HeadObjectCommand({ Bucket: deps.bucket, Key: key }));
    if (head.ContentLength !== total) return { reason: `the completed object has ${head.ContentLength} bytes, expected ${total}` };
    return {
      result: { bytes: total, etag: head.ETag ?? "", parts: parts.length, copiedParts: 0, reusedParts: parts.length - stale.length, uploadId },
      rebuiltParts: stale.length,
    };
  } catch (err) {
    // Anything but S3 refusing the request (an outage, a crash, Postgres) leaves the upload and
    // its parts for the next finalizer to complete, as the stitch keeps its own upload.
    if (!isRefusal(err)) throw err;
    deps.log.warn({ err, batch: input.batchId }, "S3 refused completing the output from chunk parts");
    return giveUp(`S3 refused completing from chunk parts: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * Aborts every multipart upload still open on a published object's key: an agent that died
 * between creating the batch's output upload and recording it leaves one nobody else knows of.
 * Best effort: servers without ListMultipartUploads (s3rver) have nothing to list.
 */
export async function abortLeftoverUploads(deps: Bucket, key: string): Promise<number> {
  let aborted = 0;
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  try {
    do {
      const res = await deps.s3.send(
        new ListMultipartUploadsCommand({ Bucket: deps.bucket, Prefix: key, ...(keyMarker ? { KeyMarker: keyMarker } : {}), ...(uploadIdMarker ? { UploadIdMarker: uploadIdMarker } : {}) }),
      );
      for (const u of res.Uploads ?? []) {
        if (u.Key !== key || !u.UploadId) continue;
        await abortQuietly(deps, key, u.UploadId);
        aborted++;
      }
      keyMarker = res.IsTruncated ? res.NextKeyMarker : undefined;
      uploadIdMarker = res.IsTruncated ? res.NextUploadIdMarker : undefined;
    } while (keyMarker);
  } catch {
    // Nothing to list on this server, or it failed: a leftover upload costs storage, never data.
  }
  return aborted;
}

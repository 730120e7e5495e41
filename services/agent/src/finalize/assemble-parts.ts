import {
  abortQuietly,
  batchOutputUpload,
  completeUpload,
  isMissingUpload,
  isRefusal,
  listUploads,
  MAX_PART_BYTES,
  MAX_PARTS,
  MIN_PART_BYTES,
  multipartEtag,
  outputPartRecords,
  recordOutputPart,
  runPool,
  statObject,
  uploadSegmentsPart,
  type Bucket,
  type OutputPartRow,
  type SegmentRef,
  type StitchResult,
} from "@barge/core";
import { partNumber, sourceDigest, type ChunkOutput, type ChunkPartDeps } from "../parts/part-records.js";

// The finalize side of a batch's output parts (see parts/build-part.ts for how agents upload them
// while the batch runs): the output object is completed from those parts, rebuilding the few that
// are missing or stale.

/** Parts rebuilt at once when the finalizer has to redo some. */
const REBUILD_CONCURRENCY = 4;

/** The batch whose output is completed from its chunk parts, and where that output goes. */
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
  const uploadId = await batchOutputUpload(deps.db, input.batchId);
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
    const records = await outputPartRecords(deps.db, input.batchId);
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
      await completeUpload(deps, key, uploadId, parts);
    } catch (err) {
      if (!isMissingUpload(err)) throw err;
      // A finalizer that completed this upload and died before publishing left exactly this object.
      const head = await statObject(deps, key).catch(() => undefined);
      const expected = multipartEtag(parts.map((p) => p.ETag));
      if (!head || head.bytes !== total || expected === undefined || head.etag !== expected) return { reason: "the output upload is gone" };
    }
    // RGW 16 answers CompleteMultipartUpload with an empty ETag; HEAD has the real one.
    const head = await statObject(deps, key);
    if (head.bytes !== total) return { reason: `the completed object has ${head.bytes} bytes, expected ${total}` };
    return {
      result: { bytes: total, etag: head.etag ?? "", parts: parts.length, copiedParts: 0, reusedParts: parts.length - stale.length, uploadId },
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
  try {
    for await (const u of listUploads(deps, key)) {
      if (u.key !== key) continue;
      await abortQuietly(deps, key, u.uploadId);
      aborted++;
    }
  } catch {
    // Nothing to list on this server, or it failed: a leftover upload costs storage, never data.
  }
  return aborted;
}

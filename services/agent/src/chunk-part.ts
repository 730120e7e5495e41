import { createHash } from "node:crypto";
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
} from "@aws-sdk/client-s3";
import {
  abortQuietly,
  claimOutputUpload,
  isMissingUpload,
  keys,
  MAX_PART_BYTES,
  MAX_PARTS,
  MIN_PART_BYTES,
  recordChunkPart,
  runPool,
  uploadSegmentsPart,
  type Bucket,
  type ChunkPartRow,
  type Db,
  type Logger,
  type SegmentRef,
  type StitchResult,
} from "@barge/core";

// A batch's output object is one multipart upload whose part `idx + 1` is chunk idx's output,
// uploaded by the agent that completed the chunk while the rest of the batch still runs. The
// finalizer then only completes the upload: no byte of the output moves at finalize time.

export interface ChunkPartDeps extends Bucket {
  db: Db;
  log: Logger;
}

/** Parts rebuilt at once when the finalizer has to redo some. */
const REBUILD_CONCURRENCY = 4;
const CONTENT_TYPE = "application/jsonl";

/** A chunk's output segments, in order, and their total size. */
interface ChunkOutput {
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

/** Part numbers are 1-based; chunk indexes 0-based. Gaps (chunks without output) are allowed. */
function partNumber(idx: number): number {
  return idx + 1;
}

async function chunkOutput(db: Db, batchId: string, idx: number): Promise<ChunkOutput> {
  const rows = await db
    .selectFrom("segments")
    .select(["s3_key", "bytes"])
    .where("batch_id", "=", batchId)
    .where("chunk_idx", "=", idx)
    .where("kind", "=", "output")
    .orderBy("seq")
    .execute();
  const segments = rows.map((r) => ({ key: r.s3_key, size: r.bytes }));
  return { idx, segments, bytes: segments.reduce((n, s) => n + s.size, 0) };
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

/** What became of one chunk's part: uploaded and recorded (with its size), or skipped. */
export type ChunkPartOutcome = { uploaded: true; bytes: number } | { uploaded: false };

const SKIPPED: ChunkPartOutcome = { uploaded: false };

/**
 * Uploads a completed chunk's output (its committed output segments, streamed in order) as its
 * part of the batch's output upload and records it. Skips chunks a part cannot serve: no output,
 * too large for one part, or smaller than S3's part minimum unless it is the batch's last chunk.
 */
export async function uploadChunkPart(deps: ChunkPartDeps, ref: { batchId: string; idx: number }): Promise<ChunkPartOutcome> {
  const batch = await deps.db.selectFrom("batches").select(["tenant", "status", "output_upload_id"]).where("id", "=", ref.batchId).executeTakeFirst();
  if (!batch || (batch.status !== "in_progress" && batch.status !== "finalizing")) return SKIPPED;
  const out = await chunkOutput(deps.db, ref.batchId, ref.idx);
  if (out.bytes === 0 || out.bytes > MAX_PART_BYTES || partNumber(ref.idx) > MAX_PARTS) return SKIPPED;
  if (out.bytes < MIN_PART_BYTES) {
    // Only the last part may be small: a small chunk helps only as the last one, and only when
    // bigger chunks already opened the upload (else the batch is stitched the old way anyway).
    if (batch.output_upload_id === null) return SKIPPED;
    const last = await deps.db
      .selectFrom("chunks")
      .select((eb) => eb.fn.max("idx").as("idx"))
      .where("batch_id", "=", ref.batchId)
      .executeTakeFirst();
    if (last?.idx !== ref.idx) return SKIPPED;
  }
  const key = keys.output(batch.tenant, ref.batchId);
  const uploadId = await outputUpload(deps, ref.batchId, key, batch.output_upload_id);
  if (!uploadId) return SKIPPED;
  const etag = await uploadSegmentsPart(deps, { key, uploadId, partNumber: partNumber(ref.idx), segments: out.segments });
  const recorded = await recordChunkPart(deps.db, {
    batchId: ref.batchId,
    idx: ref.idx,
    uploadId,
    partNumber: partNumber(ref.idx),
    etag,
    bytes: out.bytes,
    sourceDigest: sourceDigest(out.segments),
  });
  return recorded ? { uploaded: true, bytes: out.bytes } : SKIPPED;
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
 * Called once a chunk's every result is committed, just before it is marked done: uploads its
 * part (see `uploadChunkPart`) and never throws, since a missing part is only rebuilt at
 * finalize, or the batch stitched the old way. The batch's last chunk waits for its upload, so
 * that the batch turns `finalizing` with every byte in place; any other uploads in the
 * background while the agent goes on with the next chunk.
 */
export async function buildChunkPart(deps: ChunkPartDeps, ref: { batchId: string; idx: number }): Promise<void> {
  const started = performance.now();
  const last = await othersDone(deps.db, ref).catch(() => false);
  const work = uploadChunkPart(deps, ref).then(
    (outcome) => {
      if (outcome.uploaded) {
        deps.log.info({ batch: ref.batchId, chunk: ref.idx, bytes: outcome.bytes, last, ms: Math.round(performance.now() - started) }, "uploaded chunk part");
      }
    },
    (err: unknown) => deps.log.warn({ err, batch: ref.batchId, chunk: ref.idx }, "chunk part upload failed; the finalizer rebuilds it or stitches"),
  );
  if (last) await work;
}

/** An S3 answer in the 4xx range: this request will not succeed by repeating it. */
function isRefusal(err: unknown): boolean {
  const status = (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
  return status !== undefined && status >= 400 && status < 500;
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
 * Completes the batch's output upload from the parts its chunks uploaded while it ran, after
 * rebuilding the few that are missing or stale (not built from the chunk's current segments),
 * and checks the object's size. When that cannot make the object (S3's part sizes, more to
 * rebuild than already there, S3 refusing a request), the upload is aborted and the reason
 * returned: the caller then stitches the segments the old way. Other failures are thrown, with
 * the upload left in place for the next finalizer.
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
  const last = chunks.at(-1);
  if (!last) return giveUp("the output is empty");
  if (chunks.some((c) => c !== last && c.bytes < MIN_PART_BYTES)) return giveUp("a chunk's output is below S3's part minimum");
  if (chunks.some((c) => c.bytes > MAX_PART_BYTES) || partNumber(last.idx) > MAX_PARTS) return giveUp("a chunk's output exceeds S3's part limits");

  try {
    const records = new Map<number, ChunkPartRow>();
    for (const r of await deps.db.selectFrom("chunk_parts").selectAll().where("batch_id", "=", input.batchId).execute()) records.set(r.chunk_idx, r);
    const etags = new Map<number, string>();
    const stale: ChunkOutput[] = [];
    for (const c of chunks) {
      const r = records.get(c.idx);
      const valid = r && r.upload_id === uploadId && r.part_number === partNumber(c.idx) && r.bytes === c.bytes && r.source_digest === sourceDigest(c.segments);
      if (valid) etags.set(c.idx, r.etag);
      else stale.push(c);
    }
    // Rebuilding moves bytes just as the stitch does, which copies large segments server-side instead.
    if (stale.length > etags.size) return await giveUp(`${stale.length} of ${chunks.length} chunk parts are missing or stale`);

    await runPool(stale, REBUILD_CONCURRENCY, async (c, signal) => {
      const etag = await uploadSegmentsPart(deps, { key, uploadId, partNumber: partNumber(c.idx), segments: c.segments }, signal);
      etags.set(c.idx, etag);
      await recordChunkPart(deps.db, {
        batchId: input.batchId,
        idx: c.idx,
        uploadId,
        partNumber: partNumber(c.idx),
        etag,
        bytes: c.bytes,
        sourceDigest: sourceDigest(c.segments),
      });
    });

    const total = chunks.reduce((n, c) => n + c.bytes, 0);
    const parts = chunks.map((c) => ({ PartNumber: partNumber(c.idx), ETag: etags.get(c.idx) as string }));
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

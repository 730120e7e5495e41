import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { backoffDelay } from "../backoff.js";

/** S3's floor for every multipart part but the last. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
/** S3's ceiling for one part. */
export const MAX_PART_BYTES = 5 * 1024 * 1024 * 1024;
/** S3's ceiling for the number of parts in one upload. */
export const MAX_PARTS = 10_000;

const PART_CONCURRENCY = 4;
/** GETs opened ahead of the one being streamed, so many tiny segments do not serialise on latency. */
const SOURCE_LOOKAHEAD = 4;
const PART_ATTEMPTS = 3;
const DELETE_BATCH = 1000;
const DELETE_CONCURRENCY = 8;

/** One input object of the stitch, in output order. */
export interface SegmentRef {
  key: string;
  size: number;
}

/** A segment, or the bytes [range.start, range.end) of it when it has to be split across parts. */
export interface PartSource extends SegmentRef {
  range?: { start: number; end: number };
}

export type PartPlan =
  | { kind: "copy"; partNumber: number; source: PartSource; bytes: number }
  | { kind: "concat"; partNumber: number; sources: PartSource[]; bytes: number };

export interface PlanOptions {
  minPartBytes?: number;
  maxPartBytes?: number;
  maxParts?: number;
  /** false: never plan UploadPartCopy (for servers without it). */
  copy?: boolean;
}

type Unnumbered = { kind: "copy"; source: PartSource; bytes: number } | { kind: "concat"; sources: PartSource[]; bytes: number };

function sourceBytes(s: PartSource): number {
  return s.range ? s.range.end - s.range.start : s.size;
}

function slice(seg: SegmentRef, start: number, end: number): PartSource {
  const ref = { key: seg.key, size: seg.size };
  return start === 0 && end === seg.size ? ref : { ...ref, range: { start, end } };
}

function totalBytes(segments: SegmentRef[]): number {
  let total = 0;
  for (const s of segments) {
    if (!Number.isSafeInteger(s.size) || s.size < 0) throw new RangeError(`segment ${s.key} has invalid size ${s.size}`);
    total += s.size;
  }
  return total;
}

/** Splits ordered segments into multipart parts that obey S3's size rules, copying server-side where it can. */
export function planParts(segments: SegmentRef[], opts: PlanOptions = {}): PartPlan[] {
  const maxPart = opts.maxPartBytes ?? MAX_PART_BYTES;
  const maxParts = opts.maxParts ?? MAX_PARTS;
  const copy = opts.copy ?? true;
  const total = totalBytes(segments);
  // Every part but the last reaches `min`, so raising it for huge objects caps the part count.
  const min = Math.max(opts.minPartBytes ?? MIN_PART_BYTES, Math.ceil(total / (maxParts - 1)));
  // Splitting an oversized segment into k ranged copies yields pieces > maxPart/2, which must reach min.
  if (maxPart < 2 * min) throw new RangeError(`cannot plan ${total} bytes within ${maxParts} parts of at most ${maxPart} bytes`);

  const parts: Unnumbered[] = [];
  let run: PartSource[] = [];
  let runBytes = 0;
  const flush = () => {
    if (runBytes > 0) parts.push({ kind: "concat", sources: run, bytes: runBytes });
    run = [];
    runBytes = 0;
  };
  const addToRun = (seg: SegmentRef) => {
    let start = 0;
    while (start < seg.size) {
      const take = Math.min(seg.size - start, maxPart - runBytes);
      run.push(slice(seg, start, start + take));
      runBytes += take;
      start += take;
      if (runBytes >= min) flush();
    }
  };

  for (const seg of segments) {
    if (seg.size === 0) continue;
    if (!copy || seg.size < min) {
      addToRun(seg);
      continue;
    }
    if (runBytes > 0) {
      // A run is flushed as soon as it reaches min, so this one is too small to stand alone: attach it
      // where it costs the fewest client-side bytes, keeping this segment a copy when possible.
      const prev = parts.at(-1);
      if (prev?.kind === "concat" && prev.bytes + runBytes <= maxPart) {
        prev.sources.push(...run);
        prev.bytes += runBytes;
      } else if (prev?.kind === "copy" && prev.bytes < seg.size && prev.bytes + runBytes <= maxPart) {
        parts[parts.length - 1] = { kind: "concat", sources: [prev.source, ...run], bytes: prev.bytes + runBytes };
      } else {
        addToRun(seg);
        continue;
      }
      run = [];
      runBytes = 0;
    }
    const pieces = Math.ceil(seg.size / maxPart);
    for (let i = 0; i < pieces; i++) {
      const start = Math.floor((seg.size * i) / pieces);
      const end = Math.floor((seg.size * (i + 1)) / pieces);
      parts.push({ kind: "copy", source: slice(seg, start, end), bytes: end - start });
    }
  }
  flush();
  return parts.map((p, i) => ({ ...p, partNumber: i + 1 }));
}

export interface StitchDeps {
  s3: S3Client;
  bucket: string;
}

export interface StitchInput {
  segments: SegmentRef[];
  destKey: string;
  contentType?: string;
  /**
   * An upload left by an interrupted stitch of the same segments: parts whose number and size
   * match the plan are kept, the rest uploaded. An upload that is gone starts afresh.
   */
  uploadId?: string;
  /** Called with each new upload id before any part is sent, so the caller can persist it. */
  onUploadId?: (uploadId: string) => Promise<void> | void;
  /** Called after each part is stored; a throw fails the stitch like an upload error would. */
  onPartUploaded?: (part: { partNumber: number; etag: string }) => Promise<void> | void;
  /** Whether the server implements UploadPartCopy; undefined: find out on the first copy part. */
  supportsCopy?: boolean;
  /** Leave the multipart upload in place when the stitch fails, so it can be resumed. */
  keepUploadOnError?: boolean;
}

export interface StitchResult {
  bytes: number;
  etag: string;
  parts: number;
  /** Parts of the final object made server-side with UploadPartCopy. */
  copiedParts: number;
  /** Parts found already uploaded when resuming, and not sent again. */
  reusedParts: number;
  uploadId?: string;
}

/** What each client's server answered to UploadPartCopy; servers do not change under a client. */
const copySupport = new WeakMap<S3Client, boolean>();
const bulkDeleteMissing = new WeakSet<S3Client>();

interface ErrorShape {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

function shape(err: unknown): ErrorShape {
  return typeof err === "object" && err !== null ? (err as ErrorShape) : {};
}

/** An answer meaning "this server lacks the operation", as opposed to a real failure of it. */
function isUnsupported(err: unknown): boolean {
  const { name, $metadata } = shape(err);
  const status = $metadata?.httpStatusCode;
  if (name === "NotImplemented" || name === "MethodNotAllowed" || status === 501) return true;
  return status !== undefined && status >= 400 && status < 500 && ![401, 403, 404].includes(status);
}

/** The upload id names no upload (anymore): aborted, completed, or never there. */
export function isMissingUpload(err: unknown): boolean {
  const { name } = shape(err);
  // RGW 16 answers NoSuchKey for an aborted or unknown upload id.
  return name === "NoSuchUpload" || name === "NoSuchKey";
}

/** An S3 answer in the 4xx range: this request will not succeed by repeating it. */
export function isRefusal(err: unknown): boolean {
  const status = shape(err).$metadata?.httpStatusCode;
  return status !== undefined && status >= 400 && status < 500;
}

function isTransient(err: unknown): boolean {
  const { name, code, $metadata } = shape(err);
  const status = $metadata?.httpStatusCode;
  if (status !== undefined) return status >= 500 || name === "RequestTimeout";
  return name === "TimeoutError" || ["ECONNRESET", "EPIPE", "ETIMEDOUT", "ECONNREFUSED"].includes(code ?? "");
}

function quoteEtag(etag: string): string {
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

function copySource(bucket: string, src: PartSource): { CopySource: string; CopySourceRange?: string } {
  const path = `${bucket}/${src.key.split("/").map(encodeURIComponent).join("/")}`;
  return src.range ? { CopySource: path, CopySourceRange: `bytes=${src.range.start}-${src.range.end - 1}` } : { CopySource: path };
}

async function openSource(deps: StitchDeps, src: PartSource, signal: AbortSignal): Promise<Readable> {
  const res = await deps.s3.send(
    new GetObjectCommand({
      Bucket: deps.bucket,
      Key: src.key,
      ...(src.range ? { Range: `bytes=${src.range.start}-${src.range.end - 1}` } : {}),
    }),
    { abortSignal: signal },
  );
  if (!(res.Body instanceof Readable)) throw new Error(`GET ${src.key} returned no body stream`);
  return res.Body;
}

async function* readSources(deps: StitchDeps, sources: PartSource[], signal: AbortSignal): AsyncGenerator<Buffer> {
  const opened: Promise<Readable>[] = [];
  let next = 0;
  try {
    for (const src of sources) {
      while (next < sources.length && opened.length < SOURCE_LOOKAHEAD) {
        const p = openSource(deps, sources[next++] as PartSource, signal);
        // Rejections of GETs opened ahead surface when their turn comes; until then they must not go unhandled.
        p.catch(() => undefined);
        opened.push(p);
      }
      const body = await (opened.shift() as Promise<Readable>);
      const want = sourceBytes(src);
      let got = 0;
      for await (const chunk of body) {
        got += (chunk as Buffer).length;
        if (got > want) break;
        yield chunk as Buffer;
      }
      // The part's Content-Length was declared from the plan, so a segment that changed size must fail the part.
      if (got !== want) throw new Error(`segment ${src.key} yielded ${got > want ? "more than" : got} bytes, expected ${want}`);
    }
  } finally {
    // Responses opened ahead but never read would otherwise hold their sockets.
    for (const p of opened) p.then((b) => b.destroy(), () => undefined);
  }
}

async function uploadConcat(deps: StitchDeps, key: string, uploadId: string, part: PartPlan & { kind: "concat" }, signal: AbortSignal): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    // The SDK cannot replay a stream, so it does not retry streaming uploads; this loop re-reads the sources instead.
    const ctl = new AbortController();
    const cancel = () => ctl.abort();
    signal.addEventListener("abort", cancel, { once: true });
    let bodyError: unknown;
    const body = Readable.from(readSources(deps, part.sources, ctl.signal), { objectMode: false });
    // The SDK pipes the body into the request without forwarding its errors; without the abort the
    // request would wait forever for the bytes the body promised.
    body.on("error", (err) => {
      bodyError ??= err;
      ctl.abort();
    });
    try {
      const res = await deps.s3.send(
        new UploadPartCommand({ Bucket: deps.bucket, Key: key, UploadId: uploadId, PartNumber: part.partNumber, Body: body, ContentLength: part.bytes }),
        { abortSignal: ctl.signal },
      );
      if (!res.ETag) throw new Error(`UploadPart ${part.partNumber} returned no ETag`);
      return res.ETag;
    } catch (err) {
      const cause = bodyError ?? err;
      if (attempt >= PART_ATTEMPTS || signal.aborted || !isTransient(cause)) throw cause;
      await sleep(backoffDelay(attempt + 1, { base: 200, cap: Infinity }));
    } finally {
      signal.removeEventListener("abort", cancel);
      ctl.abort();
      body.destroy();
    }
  }
}

/**
 * Uploads the concatenation of `segments`, in order and streamed, as part `partNumber` of an
 * existing multipart upload; returns the part's ETag. Transient failures re-read the segments.
 */
export async function uploadSegmentsPart(
  deps: StitchDeps,
  args: { key: string; uploadId: string; partNumber: number; segments: SegmentRef[] },
  signal: AbortSignal = new AbortController().signal,
): Promise<string> {
  const bytes = totalBytes(args.segments);
  if (bytes === 0) throw new RangeError(`part ${args.partNumber} of ${args.key} would be empty`);
  const sources = args.segments.filter((s) => s.size > 0);
  return uploadConcat(deps, args.key, args.uploadId, { kind: "concat", partNumber: args.partNumber, sources, bytes }, signal);
}

/** The copy part's ETag, or undefined when the answer carries none. */
async function uploadCopy(deps: StitchDeps, key: string, uploadId: string, part: PartPlan & { kind: "copy" }, signal?: AbortSignal): Promise<string | undefined> {
  const res = await deps.s3.send(
    new UploadPartCopyCommand({ Bucket: deps.bucket, Key: key, UploadId: uploadId, PartNumber: part.partNumber, ...copySource(deps.bucket, part.source) }),
    { abortSignal: signal },
  );
  // RGW returns this ETag unquoted, unlike every other ETag it sends.
  return res.CopyPartResult?.ETag ? quoteEtag(res.CopyPartResult.ETag) : undefined;
}

/** Runs work over items with bounded parallelism; the first failure cancels the rest and is rethrown. */
export async function runPool<T>(items: T[], limit: number, work: (item: T, signal: AbortSignal) => Promise<void>): Promise<void> {
  const ctl = new AbortController();
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item, ctl.signal);
      } catch (error) {
        if (!failure) {
          failure = { error };
          ctl.abort();
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}

/** Aborts a multipart upload, best effort: servers without AbortMultipartUpload (s3rver) keep it. */
export async function abortQuietly(deps: StitchDeps, key: string, uploadId: string): Promise<void> {
  // Best effort: the original error matters more, and some servers (s3rver) lack AbortMultipartUpload.
  await deps.s3.send(new AbortMultipartUploadCommand({ Bucket: deps.bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
}

/** Parts already in an upload, or undefined when it cannot be resumed. */
async function listUploadedParts(deps: StitchDeps, key: string, uploadId: string): Promise<Map<number, { etag: string; size: number }> | undefined> {
  const parts = new Map<number, { etag: string; size: number }>();
  let marker: string | undefined;
  try {
    do {
      const res = await deps.s3.send(new ListPartsCommand({ Bucket: deps.bucket, Key: key, UploadId: uploadId, ...(marker ? { PartNumberMarker: marker } : {}) }));
      for (const p of res.Parts ?? []) {
        if (p.PartNumber !== undefined && p.ETag && p.Size !== undefined) parts.set(p.PartNumber, { etag: p.ETag, size: p.Size });
      }
      marker = res.IsTruncated ? res.NextPartNumberMarker : undefined;
    } while (marker);
  } catch (err) {
    // Without ListParts (s3rver) the upload cannot even be confirmed to exist, so it is not resumed.
    if (isMissingUpload(err) || isUnsupported(err)) return undefined;
    throw err;
  }
  return parts;
}

class CopyUnsupported extends Error {}

async function attempt(deps: StitchDeps, input: StitchInput, copy: boolean, probing: boolean, resumeId: string | undefined, total: number): Promise<StitchResult> {
  const key = input.destKey;
  const plan = planParts(input.segments, { copy });
  let uploadId: string | undefined;
  let existing = new Map<number, { etag: string; size: number }>();
  if (resumeId) {
    const listed = await listUploadedParts(deps, key, resumeId);
    // RGW only completes an upload when every uploaded part is listed, and single parts cannot be deleted.
    if (listed && [...listed.keys()].every((n) => n <= plan.length)) {
      uploadId = resumeId;
      existing = listed;
    } else if (listed) {
      await abortQuietly(deps, key, resumeId);
    }
  }
  if (!uploadId) {
    const created = await deps.s3.send(new CreateMultipartUploadCommand({ Bucket: deps.bucket, Key: key, ...(input.contentType ? { ContentType: input.contentType } : {}) }));
    if (!created.UploadId) throw new Error(`CreateMultipartUpload for ${key} returned no UploadId`);
    uploadId = created.UploadId;
    await input.onUploadId?.(uploadId);
  }
  const id = uploadId;

  try {
    const etags = new Map<number, string>();
    for (const p of plan) {
      const have = existing.get(p.partNumber);
      if (have && have.size === p.bytes) etags.set(p.partNumber, have.etag);
    }
    const reusedParts = etags.size;
    const done = async (partNumber: number, etag: string) => {
      etags.set(partNumber, etag);
      await input.onPartUploaded?.({ partNumber, etag });
    };
    let todo = plan.filter((p) => !etags.has(p.partNumber));

    const probe = probing ? todo.find((p) => p.kind === "copy") : undefined;
    if (probe?.kind === "copy") {
      let etag: string | undefined;
      try {
        etag = await uploadCopy(deps, key, id, probe);
      } catch (err) {
        if (!isUnsupported(err)) throw err;
      }
      copySupport.set(deps.s3, etag !== undefined);
      // Some servers ignore the copy header and store an empty part, answering like a plain UploadPart.
      if (etag === undefined) throw new CopyUnsupported();
      await done(probe.partNumber, etag);
      todo = todo.filter((p) => p !== probe);
    }

    await runPool(todo, PART_CONCURRENCY, async (p, signal) => {
      const etag = p.kind === "copy" ? await uploadCopy(deps, key, id, p, signal) : await uploadConcat(deps, key, id, p, signal);
      if (!etag) throw new Error(`part ${p.partNumber} of ${key}: the server returned no ETag`);
      await done(p.partNumber, etag);
    });

    await deps.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: deps.bucket,
        Key: key,
        UploadId: id,
        MultipartUpload: { Parts: plan.map((p) => ({ PartNumber: p.partNumber, ETag: etags.get(p.partNumber) as string })) },
      }),
    );
    // RGW 16 answers CompleteMultipartUpload with an empty ETag; HEAD has the real one.
    const head = await deps.s3.send(new HeadObjectCommand({ Bucket: deps.bucket, Key: key }));
    if (head.ContentLength !== total) throw new Error(`stitched ${key} has ${head.ContentLength} bytes, expected ${total}`);
    return {
      bytes: total,
      etag: head.ETag ?? "",
      parts: plan.length,
      copiedParts: plan.filter((p) => p.kind === "copy").length,
      reusedParts,
      uploadId: id,
    };
  } catch (err) {
    if (!input.keepUploadOnError || err instanceof CopyUnsupported) await abortQuietly(deps, key, id);
    throw err;
  }
}

/** Concatenates segment objects, in order, into one object with a multipart upload. */
export async function stitch(deps: StitchDeps, input: StitchInput): Promise<StitchResult> {
  const total = totalBytes(input.segments);
  if (total === 0) {
    // S3 has no zero-part multipart upload.
    await deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: input.destKey, Body: "", ContentLength: 0, ...(input.contentType ? { ContentType: input.contentType } : {}) }));
    const head = await deps.s3.send(new HeadObjectCommand({ Bucket: deps.bucket, Key: input.destKey }));
    return { bytes: 0, etag: head.ETag ?? "", parts: 0, copiedParts: 0, reusedParts: 0 };
  }
  const known = input.supportsCopy ?? copySupport.get(deps.s3);
  try {
    return await attempt(deps, input, known ?? true, known === undefined, input.uploadId, total);
  } catch (err) {
    if (!(err instanceof CopyUnsupported)) throw err;
  }
  return attempt(deps, input, false, false, undefined, total);
}

/** Deletes objects in batches of 1,000, one by one on servers without DeleteObjects. */
export async function deleteObjects(deps: StitchDeps, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += DELETE_BATCH) {
    const batch = keys.slice(i, i + DELETE_BATCH);
    if (!bulkDeleteMissing.has(deps.s3)) {
      try {
        const res = await deps.s3.send(new DeleteObjectsCommand({ Bucket: deps.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
        const errors = (res.Errors ?? []).filter((e) => e.Code !== "NoSuchKey");
        const first = errors[0];
        if (first) throw new Error(`could not delete ${errors.length} of ${batch.length} objects; ${first.Key}: ${first.Code} ${first.Message ?? ""}`.trim());
        continue;
      } catch (err) {
        if (!isUnsupported(err)) throw err;
        bulkDeleteMissing.add(deps.s3);
      }
    }
    await runPool(batch, DELETE_CONCURRENCY, async (Key, signal) => {
      await deps.s3.send(new DeleteObjectCommand({ Bucket: deps.bucket, Key }), { abortSignal: signal });
    });
  }
}

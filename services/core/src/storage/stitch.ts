import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { abortQuietly, completeUpload, createUpload, listUploadedParts } from "./multipart.js";
import { statObject } from "./objects.js";
import { planParts, totalBytes, type SegmentRef } from "./part-plan.js";
import { runPool } from "./run-pool.js";
import { isUnsupported } from "./s3-errors.js";
import { uploadConcat, uploadCopy } from "./upload-part.js";

// The stitch: segment objects concatenated, in order, into one object through one multipart
// upload, resumable after a crash and concatenating client-side on servers without UploadPartCopy.
// The plan is part-plan.ts; sending each part is upload-part.ts.

const PART_CONCURRENCY = 4;

/** The client and bucket a stitch reads its segments from and writes its object to. */
export interface StitchDeps {
  s3: S3Client;
  bucket: string;
}

/** What to stitch, where to, and how to resume or report progress. */
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

/** The stitched object and how it was made. */
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

/** The server stored no part for a copy: the attempt is dropped and redone without copies. */
class CopyUnsupported extends Error {}

/** One try at the whole stitch, copying or not, resuming `resumeId` when it still fits the plan. */
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
    uploadId = await createUpload(deps, key, input.contentType);
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

    await completeUpload(deps, key, id, plan.map((p) => ({ PartNumber: p.partNumber, ETag: etags.get(p.partNumber) as string })));
    // RGW 16 answers CompleteMultipartUpload with an empty ETag; HEAD has the real one.
    const head = await statObject(deps, key);
    if (head.bytes !== total) throw new Error(`stitched ${key} has ${head.bytes} bytes, expected ${total}`);
    return {
      bytes: total,
      etag: head.etag ?? "",
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
    const head = await statObject(deps, input.destKey);
    return { bytes: 0, etag: head.etag ?? "", parts: 0, copiedParts: 0, reusedParts: 0 };
  }
  const known = input.supportsCopy ?? copySupport.get(deps.s3);
  try {
    return await attempt(deps, input, known ?? true, known === undefined, input.uploadId, total);
  } catch (err) {
    if (!(err instanceof CopyUnsupported)) throw err;
  }
  return attempt(deps, input, false, false, undefined, total);
}

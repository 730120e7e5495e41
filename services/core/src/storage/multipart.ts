import { createHash } from "node:crypto";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
} from "@aws-sdk/client-s3";
import type { Bucket } from "./objects.js";
import { isMissingUpload, isUnsupported } from "./s3-errors.js";

// The lifecycle of one multipart upload (create, list, complete, abort), as the stitcher and the
// agents' chunk parts both drive it; uploading the parts themselves is upload-part.ts.

/** One part as CompleteMultipartUpload lists it. */
export interface CompletedPart {
  PartNumber: number;
  ETag: string;
}

/** Starts a multipart upload on `key` and returns its id. */
export async function createUpload(b: Bucket, key: string, contentType?: string): Promise<string> {
  const created = await b.s3.send(new CreateMultipartUploadCommand({ Bucket: b.bucket, Key: key, ...(contentType ? { ContentType: contentType } : {}) }));
  if (!created.UploadId) throw new Error(`CreateMultipartUpload for ${key} returned no UploadId`);
  return created.UploadId;
}

/** Completes a multipart upload from its parts, in order. */
export async function completeUpload(b: Bucket, key: string, uploadId: string, parts: CompletedPart[]): Promise<void> {
  await b.s3.send(new CompleteMultipartUploadCommand({ Bucket: b.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
}

/** Aborts a multipart upload, best effort: servers without AbortMultipartUpload (s3rver) keep it. */
export async function abortQuietly(b: Bucket, key: string, uploadId: string): Promise<void> {
  // Best effort: the original error matters more, and some servers (s3rver) lack AbortMultipartUpload.
  await b.s3.send(new AbortMultipartUploadCommand({ Bucket: b.bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
}

/** Parts already in an upload, or undefined when it cannot be resumed. */
export async function listUploadedParts(b: Bucket, key: string, uploadId: string): Promise<Map<number, { etag: string; size: number }> | undefined> {
  const parts = new Map<number, { etag: string; size: number }>();
  let marker: string | undefined;
  try {
    do {
      const res = await b.s3.send(new ListPartsCommand({ Bucket: b.bucket, Key: key, UploadId: uploadId, ...(marker ? { PartNumberMarker: marker } : {}) }));
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

/**
 * The multipart uploads open under a key prefix, listed page by page as they are consumed, so a
 * caller acting on each one sees them in S3's order. Listing errors are thrown to the consumer.
 */
export async function* listUploads(b: Bucket, prefix: string): AsyncGenerator<{ key: string; uploadId: string; initiated: Date | undefined }> {
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  do {
    const res = await b.s3.send(
      new ListMultipartUploadsCommand({ Bucket: b.bucket, Prefix: prefix, ...(keyMarker ? { KeyMarker: keyMarker } : {}), ...(uploadIdMarker ? { UploadIdMarker: uploadIdMarker } : {}) }),
    );
    for (const u of res.Uploads ?? []) {
      if (u.Key !== undefined && u.UploadId) yield { key: u.Key, uploadId: u.UploadId, initiated: u.Initiated };
    }
    keyMarker = res.IsTruncated ? res.NextKeyMarker : undefined;
    uploadIdMarker = res.IsTruncated ? res.NextUploadIdMarker : undefined;
  } while (keyMarker);
}

/**
 * Aborts the multipart uploads under `prefix` started before `before`: what a process that
 * crashed mid-upload left open, holding storage until someone aborts it. Returns how many were
 * aborted; 0 on a server without ListMultipartUploads (s3rver), where nothing can be found.
 */
export async function abortUploadsStartedBefore(b: Bucket, prefix: string, before: Date): Promise<number> {
  let aborted = 0;
  try {
    for await (const u of listUploads(b, prefix)) {
      if (!u.initiated || u.initiated >= before) continue;
      try {
        await b.s3.send(new AbortMultipartUploadCommand({ Bucket: b.bucket, Key: u.key, UploadId: u.uploadId }));
        aborted++;
      } catch (err) {
        // Completed or aborted since it was listed: nothing is left to remove.
        if (!isMissingUpload(err)) throw err;
      }
    }
  } catch (err) {
    if (isUnsupported(err)) return aborted;
    throw err;
  }
  return aborted;
}

/** The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, then "-" and the part count. */
export function multipartEtag(etags: string[]): string | undefined {
  const md5s = etags.map((e) => e.replace(/"/g, ""));
  if (!md5s.every((m) => /^[0-9a-f]{32}$/i.test(m))) return undefined;
  const h = createHash("md5");
  for (const m of md5s) h.update(Buffer.from(m, "hex"));
  return `"${h.digest("hex")}-${md5s.length}"`;
}

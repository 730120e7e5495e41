import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import type { Readable } from "node:stream";
import { PreconditionFailed } from "./s3-errors.js";

/** The S3 client and the one bucket Barge keeps everything in. */
export interface Bucket {
  s3: S3Client;
  bucket: string;
}

/**
 * Streams an object, or the byte range [start, end) of it. With `ifMatch`, it throws (see
 * `isPreconditionFailed`) unless the object still has that ETag, so a reader never gets bytes
 * of an object that was replaced since it was checked.
 */
export async function getObjectStream(b: Bucket, key: string, range?: { start: number; end: number }, opts: { ifMatch?: string | null } = {}): Promise<Readable> {
  const res = await b.s3.send(
    new GetObjectCommand({
      Bucket: b.bucket,
      Key: key,
      ...(range ? { Range: `bytes=${range.start}-${range.end - 1}` } : {}),
      ...(opts.ifMatch ? { IfMatch: opts.ifMatch } : {}),
    }),
  );
  const body = res.Body as Readable;
  // Some servers (s3rver) ignore If-Match; the ETag of the answer tells the same thing.
  if (opts.ifMatch && res.ETag !== opts.ifMatch) {
    body.destroy();
    throw new PreconditionFailed(key, opts.ifMatch, res.ETag);
  }
  return body;
}

/** An object's body stream with the size and ETag of the GET that opened it; throws when there is no such object. */
export async function getObject(b: Bucket, key: string): Promise<{ body: Readable; bytes: number; etag: string }> {
  const res = await b.s3.send(new GetObjectCommand({ Bucket: b.bucket, Key: key }));
  return { body: res.Body as Readable, bytes: res.ContentLength ?? 0, etag: res.ETag ?? "" };
}

/**
 * Size and ETag exactly as HEAD reports them (either may be missing), throwing when there is no
 * object: for checking an object just written, where its absence is an error.
 */
export async function statObject(b: Bucket, key: string): Promise<{ bytes: number | undefined; etag: string | undefined }> {
  const res = await b.s3.send(new HeadObjectCommand({ Bucket: b.bucket, Key: key }));
  return { bytes: res.ContentLength, etag: res.ETag };
}

/** Size and ETag of an object, or undefined when there is none. */
export async function headObject(b: Bucket, key: string): Promise<{ bytes: number; etag: string } | undefined> {
  try {
    const res = await b.s3.send(new HeadObjectCommand({ Bucket: b.bucket, Key: key }));
    return { bytes: res.ContentLength ?? 0, etag: res.ETag ?? "" };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Writes a small object from memory (segments, manifests). */
export async function putObject(b: Bucket, key: string, body: string | Buffer, contentType = "application/jsonl"): Promise<void> {
  await b.s3.send(new PutObjectCommand({ Bucket: b.bucket, Key: key, Body: body, ContentType: contentType }));
}

/**
 * Copies an object server-side (up to S3's 5 GiB single-copy limit); resolves to the copy's
 * ETag, quoted as HEAD and GET quote it (Ceph RGW answers a copy's bare).
 */
export async function copyObject(b: Bucket, from: string, to: string): Promise<string> {
  const res = await b.s3.send(
    new CopyObjectCommand({ Bucket: b.bucket, Key: to, CopySource: `${b.bucket}/${from.split("/").map(encodeURIComponent).join("/")}` }),
  );
  const etag = res.CopyObjectResult?.ETag;
  if (!etag) throw new Error(`copy of ${from} to ${to} ended without an ETag`);
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

/** Deletes an object; deleting one that is already gone succeeds. */
export async function deleteObject(b: Bucket, key: string): Promise<void> {
  await b.s3.send(new DeleteObjectCommand({ Bucket: b.bucket, Key: key }));
}

/** The keys under a prefix, one listing page (up to 1,000) at a time. */
export async function* listKeyPages(b: Bucket, prefix: string): AsyncGenerator<string[]> {
  let token: string | undefined;
  do {
    const page = await b.s3.send(new ListObjectsV2Command({ Bucket: b.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
    yield (page.Contents ?? []).flatMap((o) => (o.Key ? [o.Key] : []));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

/** A presigned GET for reading a result with no credentials. */
export function presignGet(b: Bucket, key: string, expiresIn: number): Promise<string> {
  return getSignedUrl(b.s3, new GetObjectCommand({ Bucket: b.bucket, Key: key }), { expiresIn });
}

/**
 * A presigned PUT for uploading an input straight to S3, of exactly `bytes` bytes: Content-Length
 * is one of the signed headers, so S3 refuses a body of any other size (servers that check
 * presigned signatures fully; s3rver does not).
 */
export function presignPut(b: Bucket, key: string, expiresIn: number, bytes: number): Promise<string> {
  return getSignedUrl(b.s3, new PutObjectCommand({ Bucket: b.bucket, Key: key, ContentLength: bytes }), {
    expiresIn,
    // Signed already when present; named so no presigner default can leave it out.
    signableHeaders: new Set(["content-length"]),
  });
}

/** True for S3's "no such object" answers, whichever way the server phrases them. */
export function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NotFound" || e?.name === "NoSuchKey" || e?.$metadata?.httpStatusCode === 404;
}

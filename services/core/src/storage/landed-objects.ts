import { HeadObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import type { LandedObject } from "../domain/landed-object.js";
import { getObjectStream, isNotFound, type Bucket } from "./objects.js";

/** What HEAD says of one landed object version: its size and user metadata (`x-amz-meta-` names, lower-cased, prefix dropped). */
export interface LandedHead {
  bytes: number;
  metadata: Record<string, string>;
}

function quoted(etag: string): string {
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

/**
 * HEADs a landed object pinned to `etag` (If-Match): "gone" when the key holds no object or other
 * bytes by now (the newer version has a row of its own). The answer's ETag is compared too, for
 * servers that ignore If-Match on HEAD.
 */
export async function headLandedObject(b: Bucket, key: string, etag: string): Promise<LandedHead | "gone"> {
  try {
    const res = await b.s3.send(new HeadObjectCommand({ Bucket: b.bucket, Key: key, IfMatch: quoted(etag) }));
    if (res.ETag !== quoted(etag)) return "gone";
    return { bytes: res.ContentLength ?? 0, metadata: res.Metadata ?? {} };
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (isNotFound(err) || status === 412) return "gone";
    throw err;
  }
}

/** The first `maxBytes` bytes of an object version (a pinned Range GET), to read its first line. */
export async function readObjectStart(b: Bucket, key: string, etag: string, maxBytes: number): Promise<Buffer> {
  const body = await getObjectStream(b, key, { start: 0, end: maxBytes }, { ifMatch: quoted(etag) });
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The objects under a prefix as landed objects, one listing page (up to 1,000) at a time. */
export async function* listLandedPages(b: Bucket, prefix: string): AsyncGenerator<LandedObject[]> {
  let token: string | undefined;
  do {
    const page = await b.s3.send(new ListObjectsV2Command({ Bucket: b.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
    yield (page.Contents ?? []).flatMap((o) =>
      o.Key && o.ETag ? [{ bucket: b.bucket, key: o.Key, etag: o.ETag.replace(/^"|"$/g, ""), size: o.Size ?? 0, versionId: null }] : [],
    );
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

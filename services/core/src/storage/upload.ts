import { Upload } from "@aws-sdk/lib-storage";
import type { Readable } from "node:stream";
import type { Bucket } from "./objects.js";

/**
 * Streams a body of unknown length into one object: a single PUT when it fits in one part, else
 * a multipart upload holding at most two 5 MiB parts in memory. Aborting `signal` aborts the
 * upload (and any multipart upload already started) and rejects. Resolves to the ETag the
 * server gave the object.
 */
export async function uploadStream(
  b: Bucket,
  key: string,
  body: Readable,
  opts: { contentType?: string; signal?: AbortSignal } = {},
): Promise<string> {
  const upload = new Upload({
    client: b.s3,
    params: { Bucket: b.bucket, Key: key, Body: body, ContentType: opts.contentType },
    queueSize: 2,
    leavePartsOnError: false,
  });
  const onAbort = () => void upload.abort().catch(() => {});
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const res = await upload.done();
    if (!res.ETag) throw new Error(`upload of ${key} ended without an ETag`);
    // Quoted as HEAD and GET quote it, which is what reads pinned to it are compared with.
    return res.ETag.startsWith('"') ? res.ETag : `"${res.ETag}"`;
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
  }
}

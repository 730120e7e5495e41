import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import parseRange from "range-parser";
import { getObjectStream, headObject, isNotFound, type Bucket } from "@barge/core";
import { openObject } from "./store/objects.js";

// The one way the API streams a stored object to a client (`/v1/files/{id}/content`,
// `/v1/batches/{id}/results`): never buffered, with single byte ranges.

/** A Node stream as the web stream a `Response` takes. */
export function webBody(body: Readable): ReadableStream<Uint8Array> {
  return Readable.toWeb(body) as WebReadableStream<Uint8Array> as ReadableStream<Uint8Array>;
}

/**
 * Answers with the object at `key`, streamed from S3, or undefined when there is no such object.
 * Without a `Range` header: 200 with the whole object. With one range (`a-b`, `a-`, `-n`): 206
 * with `Content-Range`, or 416 with `Content-Range: bytes *\/<size>` when no byte can answer it
 * (it starts past the end, or ends before its start). A malformed header, another unit or
 * several ranges are ignored (200), as RFC 9110 allows.
 */
export async function objectResponse(b: Bucket, key: string, range: string | undefined, headers: Record<string, string>): Promise<Response | undefined> {
  const base = { ...headers, "accept-ranges": "bytes" };
  if (range !== undefined) {
    const stat = await headObject(b, key);
    if (!stat) return undefined;
    const ranges = parseRange(stat.bytes, range, { combine: true });
    if (ranges === -1) return new Response(null, { status: 416, headers: { ...base, "content-range": `bytes */${stat.bytes}` } });
    if (ranges !== -2 && ranges.type === "bytes" && ranges.length === 1) {
      const { start, end } = ranges[0]!;
      // Barge never rewrites an object under its key, so the size HEAD saw is the size GET reads.
      const body = await getObjectStream(b, key, { start, end: end + 1 }).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
      if (!body) return undefined;
      return new Response(webBody(body), {
        status: 206,
        headers: { ...base, "content-length": String(end + 1 - start), "content-range": `bytes ${start}-${end}/${stat.bytes}` },
      });
    }
  }
  const object = await openObject(b, key);
  if (!object) return undefined;
  return new Response(webBody(object.body), { headers: { ...base, "content-length": String(object.bytes) } });
}

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
 * The one byte range a `Range` header asks of `size` bytes (inclusive `end`), "unsatisfiable"
 * when no byte can answer it (it starts past the end, or ends before its start), or undefined
 * when it is to be ignored: absent, malformed, another unit or several ranges, as RFC 9110 allows.
 */
export function requestedRange(size: number, header: string | undefined): { start: number; end: number } | "unsatisfiable" | undefined {
  if (header === undefined) return undefined;
  const ranges = parseRange(size, header, { combine: true });
  if (ranges === -1) return "unsatisfiable";
  return ranges !== -2 && ranges.type === "bytes" && ranges.length === 1 ? ranges[0] : undefined;
}

/**
 * Answers with the object at `key`, streamed from S3, or undefined when there is no such object:
 * 200 with the whole object, 206 with `Content-Range` for the one range asked (see
 * `requestedRange`), 416 with `Content-Range: bytes *\/<size>` for an unsatisfiable one.
 */
export async function objectResponse(b: Bucket, key: string, range: string | undefined, headers: Record<string, string>): Promise<Response | undefined> {
  const base = { ...headers, "accept-ranges": "bytes" };
  if (range !== undefined) {
    const stat = await headObject(b, key);
    if (!stat) return undefined;
    const asked = requestedRange(stat.bytes, range);
    if (asked === "unsatisfiable") return new Response(null, { status: 416, headers: { ...base, "content-range": `bytes */${stat.bytes}` } });
    if (asked) {
      const { start, end } = asked;
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

import { getObjectStream, isNotFound, type Bucket } from "./objects.js";
import { totalBytes, type SegmentRef } from "./part-plan.js";
import { readSources } from "./upload-part.js";

/** True for S3's answer to a range past an object's end. */
function isInvalidRange(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "InvalidRange" || e?.$metadata?.httpStatusCode === 416;
}

/**
 * The bytes of `segments` concatenated in order, streamed (a few GETs opened ahead), for a
 * reader racing whoever deletes them. When a segment is gone, the rest of the concatenation is
 * read from `fallbackKey`, an object holding the same bytes at the same offsets (the published
 * output the segments were stitched into); when that is missing too, the bytes simply end there,
 * at a segment boundary, so the reader always gets a whole-line prefix and never an error.
 */
export async function* readConcatenation(deps: Bucket, segments: SegmentRef[], fallbackKey: string): AsyncGenerator<Buffer> {
  const ctl = new AbortController();
  let sent = 0;
  try {
    for await (const bytes of readSources(deps, segments, ctl.signal)) {
      sent += bytes.length;
      yield bytes;
    }
    return;
  } catch (err) {
    // A segment is only ever missing at the GET that opens it: `sent` is the boundary before it.
    if (!isNotFound(err)) throw err;
  } finally {
    ctl.abort();
  }
  const total = totalBytes(segments);
  let rest;
  try {
    rest = await getObjectStream(deps, fallbackKey, { start: sent, end: total });
  } catch (err) {
    if (isNotFound(err) || isInvalidRange(err)) return;
    throw err;
  }
  for await (const bytes of rest) yield bytes as Buffer;
}

import { getObjectStream, isNotFound, type Bucket } from "./objects.js";
import { totalBytes, type PartSource, type SegmentRef } from "./part-plan.js";
import { isInvalidRange } from "./s3-errors.js";
import { readSources } from "./upload-part.js";

/** The pieces of `segments` that hold the bytes [start, end) of their concatenation. */
function windowSources(segments: SegmentRef[], start: number, end: number): PartSource[] {
  const sources: PartSource[] = [];
  let offset = 0;
  for (const s of segments) {
    const from = Math.max(start, offset);
    const to = Math.min(end, offset + s.size);
    if (from < to) sources.push(from === offset && to === offset + s.size ? s : { ...s, range: { start: from - offset, end: to - offset } });
    offset += s.size;
  }
  return sources;
}

/**
 * The bytes of `segments` concatenated in order (or the bytes [start, end) of that), streamed
 * with a few GETs opened ahead, for a reader racing whoever deletes them. When a segment is gone,
 * the rest is read from `fallbackKey`, an object holding the same bytes at the same offsets (the
 * published output the segments were stitched into); when that is missing too, the bytes simply
 * end there, at a segment's boundary, so the reader gets a prefix and never an error.
 */
export async function* readConcatenation(deps: Bucket, segments: SegmentRef[], fallbackKey: string, window?: { start: number; end: number }): AsyncGenerator<Buffer> {
  const start = window?.start ?? 0;
  const end = window?.end ?? totalBytes(segments);
  const ctl = new AbortController();
  let sent = 0;
  try {
    for await (const bytes of readSources(deps, windowSources(segments, start, end), ctl.signal)) {
      sent += bytes.length;
      yield bytes;
    }
    return;
  } catch (err) {
    // A segment is only ever missing at the GET that opens it: `sent` ends at the piece before it.
    if (!isNotFound(err)) throw err;
  } finally {
    ctl.abort();
  }
  let rest;
  try {
    rest = await getObjectStream(deps, fallbackKey, { start: start + sent, end });
  } catch (err) {
    if (isNotFound(err) || isInvalidRange(err)) return;
    throw err;
  }
  for await (const bytes of rest) yield bytes as Buffer;
}

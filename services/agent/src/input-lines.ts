import { getObjectStream, readLines, type Bucket, type Line } from "@barge/core";

const REOPEN_ATTEMPTS = 3;

/**
 * Streams the lines of the byte range [start.offset, endOffset) of an input object. The runner
 * pulls a line only when a request slot is free, so with a slow engine the GET sits paused for
 * a long time and servers may drop it; on a stream error this re-opens the range just past the
 * last line handed out instead of failing the chunk.
 */
export async function* inputLines(
  bucket: Bucket,
  key: string,
  start: { offset: number; lineNo: number },
  endOffset: number,
): AsyncGenerator<Line> {
  let pos = start;
  let failures = 0;
  while (pos.offset < endOffset) {
    try {
      const body = await getObjectStream(bucket, key, { start: pos.offset, end: endOffset });
      for await (const line of readLines(body, pos)) {
        yield line;
        pos = { offset: line.end, lineNo: line.lineNo + 1 };
        failures = 0;
      }
      return;
    } catch (err) {
      if (++failures >= REOPEN_ATTEMPTS) throw err;
    }
  }
}

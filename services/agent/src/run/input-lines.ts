import { setTimeout as sleep } from "node:timers/promises";
import { backoffDelay, type Bucket, getObjectStream, InputChanged, isPreconditionFailed, type Line, readLines } from "@barge/core";

/** How long an input read keeps re-opening its range across S3 errors before the chunk fails. */
const REOPEN_FOR_MS = 60_000;

/**
 * Streams the lines of the byte range [start.offset, endOffset) of an input object. The runner
 * pulls a line only when a request slot is free, so with a slow engine the GET sits paused for
 * a long time and servers may drop it; S3 may also be briefly unreachable. On a stream error this
 * re-opens the range just past the last line handed out, with backoff, for up to a minute of
 * failing instead of failing the chunk. Aborting `signal` ends the retries. With `ifMatch` every
 * GET is pinned to that ETag, and an object replaced since then throws `InputChanged` at once.
 */
export async function* inputLines(
  bucket: Bucket,
  key: string,
  start: { offset: number; lineNo: number },
  endOffset: number,
  signal?: AbortSignal,
  ifMatch?: string | null,
): AsyncGenerator<Line> {
  let pos = start;
  let failingSince: number | undefined;
  let failures = 0;
  while (pos.offset < endOffset) {
    try {
      const body = await getObjectStream(bucket, key, { start: pos.offset, end: endOffset }, { ifMatch });
      for await (const line of readLines(body, pos)) {
        yield line;
        pos = { offset: line.end, lineNo: line.lineNo + 1 };
        failingSince = undefined;
        failures = 0;
      }
      return;
    } catch (err) {
      // Another object under the same key: no retry brings the validated one back.
      if (isPreconditionFailed(err)) throw new InputChanged(key);
      failingSince ??= Date.now();
      if (signal?.aborted || Date.now() - failingSince >= REOPEN_FOR_MS) throw err;
      const delay = backoffDelay(++failures, { base: 100, cap: 2000 });
      await sleep(delay, undefined, signal ? { signal } : {}).catch(() => undefined);
    }
  }
}

/** One request of an input line. */
export interface InputRequest {
  customId: string;
  url: string;
  body: unknown;
}

/**
 * Parses an input line validation already accepted. A line that no longer parses means the input
 * object changed under the batch, and failing the chunk loudly beats inventing a result for it.
 */
export function parseRequest(text: string): InputRequest {
  const v = JSON.parse(text) as { custom_id?: unknown; url?: unknown; body?: unknown };
  if (typeof v.custom_id !== "string" || typeof v.url !== "string" || typeof v.body !== "object" || v.body === null) {
    throw new Error("input line lost its custom_id, url or body since validation");
  }
  return { customId: v.custom_id, url: v.url, body: v.body };
}

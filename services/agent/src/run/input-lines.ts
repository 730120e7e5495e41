import { setTimeout as sleep } from "node:timers/promises";
import { backoffDelay, type Bucket, getObjectStream, InputChanged, isBlankLine, isPreconditionFailed, type Line, LineTooLarge, readLineBlocks, readLines } from "@barge/core";
import { customIdIn } from "./json-text-scan.js";

/** How long an input read keeps re-opening its range across S3 errors before the chunk fails. */
const REOPEN_FOR_MS = 60_000;

/** A line of a chunk's input; one longer than the line limit comes without its text. */
export interface InputLine extends Line {
  /** Set, with `text` empty, for a line longer than the limit: its full length, newline included. */
  oversizedBytes?: number;
  /** An oversized line's `custom_id`, read from its start (`line-N` when the start does not hold it). */
  customId?: string;
}

/** How much of an oversized line's start is kept to find its `custom_id`. */
const OVERSIZED_PREFIX_BYTES = 64 * 1024;

/** Whether a line is a request: validation skipped blank lines without numbering them, so must every reader. */
export function isRequestLine(line: InputLine): boolean {
  return line.oversizedBytes !== undefined || !isBlankLine(line.text);
}

/**
 * Streams the lines of the byte range [start.offset, endOffset) of an input object. The runner
 * pulls a line only when a request slot is free, so with a slow engine the GET sits paused for
 * a long time and servers may drop it; S3 may also be briefly unreachable. On a stream error this
 * re-opens the range just past the last line handed out, with backoff, for up to a minute of
 * failing instead of failing the chunk. Aborting `signal` ends the retries. With `ifMatch` every
 * GET is pinned to that ETag, and an object replaced since then throws `InputChanged` at once.
 * A line longer than `maxLineBytes` (which validation let through only if the limit was lowered
 * since) is skipped without being held and handed out as an `oversizedBytes` line, so its
 * request alone fails.
 */
export async function* inputLines(
  bucket: Bucket,
  key: string,
  start: { offset: number; lineNo: number },
  endOffset: number,
  opts: { signal?: AbortSignal | undefined; maxLineBytes?: number | undefined; ifMatch?: string | null | undefined } = {},
): AsyncGenerator<InputLine> {
  const { signal, maxLineBytes, ifMatch } = opts;
  let pos = start;
  let failingSince: number | undefined;
  let failures = 0;
  while (pos.offset < endOffset) {
    try {
      const body = await getObjectStream(bucket, key, { start: pos.offset, end: endOffset }, { ifMatch });
      let tooLarge: LineTooLarge;
      try {
        for await (const line of readLines(body, pos, { maxLineBytes })) {
          yield line;
          pos = { offset: line.end, lineNo: line.lineNo + 1 };
          failingSince = undefined;
          failures = 0;
        }
        return;
      } catch (err) {
        if (!(err instanceof LineTooLarge)) throw err;
        tooLarge = err;
        body.destroy();
      }
      const { offset, lineNo } = tooLarge;
      const { bytes, prefix } = await skipOversized(bucket, key, offset, endOffset, maxLineBytes, ifMatch);
      yield { text: "", offset, end: offset + bytes, lineNo, oversizedBytes: bytes, customId: customIdIn(prefix) ?? `line-${lineNo}` };
      pos = { offset: offset + bytes, lineNo: lineNo + 1 };
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

/**
 * The full length of the oversized line at `offset`, found by skipping its bytes without keeping
 * them, and the text of its first bytes.
 */
async function skipOversized(
  bucket: Bucket,
  key: string,
  offset: number,
  endOffset: number,
  maxLineBytes: number | undefined,
  ifMatch: string | null | undefined,
): Promise<{ bytes: number; prefix: string }> {
  const body = await getObjectStream(bucket, key, { start: offset, end: endOffset }, { ifMatch });
  const kept: Buffer[] = [];
  let keptBytes = 0;
  async function* keepingPrefix(): AsyncGenerator<Buffer> {
    for await (const piece of body as AsyncIterable<Buffer>) {
      if (keptBytes < OVERSIZED_PREFIX_BYTES) {
        const part = piece.subarray(0, OVERSIZED_PREFIX_BYTES - keptBytes);
        kept.push(part);
        keptBytes += part.length;
      }
      yield piece;
    }
  }
  try {
    for await (const block of readLineBlocks(keepingPrefix(), { maxLineBytes })) {
      return { bytes: block.oversizedLineBytes ?? block.bytes.length, prefix: Buffer.concat(kept).toString("utf8") };
    }
    throw new Error(`input line at byte ${offset} vanished on a second read`);
  } finally {
    body.destroy();
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

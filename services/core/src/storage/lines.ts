import type { Readable } from "node:stream";
import { noteStreamedBytes } from "../heap-policy.js";

/** The longest request line readers accept by default (16 MiB: room for a base64 image). */
export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;

/** Options of the line readers. */
export interface LineLimits {
  /** The longest line, in bytes without its LF or CRLF terminator, a reader will hold. */
  maxLineBytes?: number | undefined;
}

/** A line longer than the reader's `maxLineBytes`: it was not read whole. */
export class LineTooLarge extends Error {
  constructor(
    readonly lineNo: number,
    /** Byte offset of the line's first byte in the whole object. */
    readonly offset: number,
    /** How many of its bytes were seen before giving up: more than the limit, not its full length. */
    readonly bytes: number,
  ) {
    super(`line ${lineNo} is longer than the line limit (${bytes} bytes seen)`);
    this.name = "LineTooLarge";
  }
}

/** One line of a JSONL stream with its place in the file. */
export interface Line {
  text: string;
  /** Byte offset of the line's first byte in the whole object. */
  offset: number;
  /** Byte offset just past the line's terminating newline (or the end of the data). */
  end: number;
  /** 1-based line number in the whole object. */
  lineNo: number;
}

function bufferOf(piece: Uint8Array): Buffer {
  return Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
}

/**
 * Bytes of a line still waiting for its newline, kept as the pieces they came in so a line that
 * straddles many pieces is copied once, when it ends, not once per piece.
 */
class PendingLine {
  private pieces: Buffer[] = [];
  length = 0;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.pieces.push(b);
    this.length += b.length;
  }

  /** Whether the line is already known to be longer than `max` without its terminator. */
  exceeds(max: number): boolean {
    if (this.length <= max) return false;
    // A trailing CR may yet be the first half of a CRLF terminator.
    const last = this.pieces[this.pieces.length - 1]!;
    return this.length - (last[last.length - 1] === 13 ? 1 : 0) > max;
  }

  /** The pending bytes followed by `tail`, as one buffer, and an empty pending line. */
  take(tail: Buffer): Buffer {
    const out = this.pieces.length === 0 ? tail : Buffer.concat([...this.pieces, tail], this.length + tail.length);
    this.pieces = [];
    this.length = 0;
    return out;
  }
}

/** Length of a line's content: its bytes without the LF or CRLF that ends it. */
function contentLength(line: Buffer): number {
  let n = line.length;
  if (n > 0 && line[n - 1] === 10) n--;
  if (n > 0 && line[n - 1] === 13) n--;
  return n;
}

/**
 * Splits a byte stream into lines, tracking byte offsets (not characters) so a chunk index can
 * later Range-GET exactly those bytes. Holds at most one partial line besides the current piece,
 * and throws `LineTooLarge` as soon as a line is known to be longer than `maxLineBytes`.
 */
export async function* readLines(
  body: Readable | AsyncIterable<Uint8Array>,
  start: { offset: number; lineNo: number } = { offset: 0, lineNo: 1 },
  limits: LineLimits = {},
): AsyncGenerator<Line> {
  const max = limits.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  let offset = start.offset;
  let lineNo = start.lineNo;
  const pending = new PendingLine();
  const lineOf = (bytes: Buffer): Line => {
    if (contentLength(bytes) > max) throw new LineTooLarge(lineNo, offset, bytes.length);
    const line = { text: bytes.toString("utf8", 0, contentLength(bytes)), offset, end: offset + bytes.length, lineNo };
    offset += bytes.length;
    lineNo++;
    return line;
  };
  for await (const piece of body as AsyncIterable<Uint8Array>) {
    const buf = bufferOf(piece);
    noteStreamedBytes(buf.length);
    let pos = 0;
    for (let nl = buf.indexOf(10); nl !== -1; nl = buf.indexOf(10, pos)) {
      const line = pending.take(buf.subarray(pos, nl + 1));
      pos = nl + 1;
      yield lineOf(line);
    }
    pending.push(buf.subarray(pos));
    if (pending.exceeds(max)) throw new LineTooLarge(lineNo, offset, pending.length);
  }
  if (pending.length > 0) yield lineOf(pending.take(Buffer.alloc(0)));
}

/** Whole lines of a byte stream, as one slice of its bytes. */
export interface LineBlock {
  /** One or more whole lines; only the very last block may end without a newline. Empty for an oversized line. */
  bytes: Buffer;
  /** Byte offset of `bytes[0]` in the whole object. */
  offset: number;
  /** 1-based line number of the block's first line. */
  lineNo: number;
  /** Set on the block standing for one line longer than `maxLineBytes`: its full length, newline included. */
  oversizedLineBytes?: number;
}

/**
 * Splits a byte stream into blocks of whole lines without copying it: each piece is cut after its
 * last newline, and only the line that straddles two pieces is copied, as a block of its own.
 * For readers that walk lines in bytes (validation), where a string per line would be garbage.
 * A line longer than `maxLineBytes` is skipped without being kept and stands as one empty block
 * with `oversizedLineBytes`, so memory is bounded by the limit, not by the longest line.
 */
export async function* readLineBlocks(body: Readable | AsyncIterable<Uint8Array>, limits: LineLimits = {}): AsyncGenerator<LineBlock> {
  const max = limits.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  let offset = 0;
  let lineNo = 1;
  const pending = new PendingLine();
  // Bytes of the oversized line being skipped, or undefined when not skipping.
  let skipped: number | undefined;
  const emit = (bytes: Buffer): LineBlock => {
    const block = { bytes, offset, lineNo };
    offset += bytes.length;
    lineNo += countNewlines(bytes);
    return block;
  };
  const oversized = (length: number): LineBlock => {
    const block = { bytes: Buffer.alloc(0), offset, lineNo, oversizedLineBytes: length };
    offset += length;
    lineNo++;
    skipped = undefined;
    return block;
  };
  for await (const piece of body as AsyncIterable<Uint8Array>) {
    const buf = bufferOf(piece);
    noteStreamedBytes(buf.length);
    const first = buf.indexOf(10);
    if (first === -1) {
      if (skipped !== undefined) skipped += buf.length;
      else {
        pending.push(buf);
        if (pending.exceeds(max)) skipped = pending.take(Buffer.alloc(0)).length;
      }
      continue;
    }
    let pos = 0;
    if (skipped !== undefined) {
      yield oversized(skipped + first + 1);
      pos = first + 1;
    } else if (pending.length > 0) {
      const line = pending.take(buf.subarray(0, first + 1));
      yield contentLength(line) > max ? oversized(line.length) : emit(line);
      pos = first + 1;
    }
    const last = buf.lastIndexOf(10);
    if (last >= pos) yield* wholeLines(buf.subarray(pos, last + 1));
    pending.push(buf.subarray(last + 1));
    if (pending.exceeds(max)) skipped = pending.take(Buffer.alloc(0)).length;
  }
  if (skipped !== undefined) yield oversized(skipped);
  else if (pending.length > 0) {
    const line = pending.take(Buffer.alloc(0));
    yield contentLength(line) > max ? oversized(line.length) : emit(line);
  }

  // The lines of one piece as few blocks as possible: oversized lines inside it split it up.
  function* wholeLines(b: Buffer): Generator<LineBlock> {
    if (b.length <= max) {
      yield emit(b);
      return;
    }
    let from = 0;
    let pos = 0;
    while (pos < b.length) {
      const nl = b.indexOf(10, pos);
      const line = b.subarray(pos, nl + 1);
      if (contentLength(line) > max) {
        if (pos > from) yield emit(b.subarray(from, pos));
        yield oversized(line.length);
        from = nl + 1;
      }
      pos = nl + 1;
    }
    if (pos > from) yield emit(b.subarray(from, pos));
  }
}

function countNewlines(b: Buffer): number {
  let n = 0;
  for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) n++;
  return n;
}

/**
 * Whether a JSONL line is blank. Validation skips blank lines without counting them as requests,
 * so every reader that numbers requests (runner, expiry fill, retry) must skip exactly the same.
 */
export function isBlankLine(text: string): boolean {
  return text.trim() === "";
}

import type { Readable } from "node:stream";
import { noteStreamedBytes } from "../heap-policy.js";

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

/**
 * Splits a byte stream into lines, tracking byte offsets (not characters) so a chunk index can
 * later Range-GET exactly those bytes. Holds at most one partial line besides the current buffer.
 */
export async function* readLines(
  body: Readable | AsyncIterable<Uint8Array>,
  start: { offset: number; lineNo: number } = { offset: 0, lineNo: 1 },
): AsyncGenerator<Line> {
  let offset = start.offset;
  let lineNo = start.lineNo;
  let carry: Buffer | null = null;
  for await (const piece of body as AsyncIterable<Uint8Array>) {
    let buf: Buffer = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    noteStreamedBytes(buf.length);
    if (carry) {
      buf = Buffer.concat([carry, buf]);
      carry = null;
    }
    let pos = 0;
    for (;;) {
      const nl = buf.indexOf(10, pos);
      if (nl === -1) break;
      const endNoCr = nl > pos && buf[nl - 1] === 13 ? nl - 1 : nl;
      yield { text: buf.toString("utf8", pos, endNoCr), offset, end: offset + (nl + 1 - pos), lineNo };
      offset += nl + 1 - pos;
      lineNo++;
      pos = nl + 1;
    }
    if (pos < buf.length) carry = buf.subarray(pos);
  }
  if (carry && carry.length > 0) {
    const endNoCr = carry[carry.length - 1] === 13 ? carry.length - 1 : carry.length;
    yield { text: carry.toString("utf8", 0, endNoCr), offset, end: offset + carry.length, lineNo };
  }
}

/** Whole lines of a byte stream, as one slice of its bytes. */
export interface LineBlock {
  /** One or more whole lines; only the very last block may end without a newline. */
  bytes: Buffer;
  /** Byte offset of `bytes[0]` in the whole object. */
  offset: number;
  /** 1-based line number of the block's first line. */
  lineNo: number;
  /** Set on a block that stands for one line longer than the limit, skipped unread: its length in bytes. */
  oversizedLineBytes?: number;
}

/**
 * Splits a byte stream into blocks of whole lines without copying it: each piece is cut after its
 * last newline, and only the line that straddles two pieces is copied, as a block of its own.
 * For readers that walk lines in bytes (validation), where a string per line would be garbage.
 */
export async function* readLineBlocks(body: Readable | AsyncIterable<Uint8Array>): AsyncGenerator<LineBlock> {
  let offset = 0;
  let lineNo = 1;
  let carry: Buffer[] = [];
  const emit = (bytes: Buffer): LineBlock => {
    const block = { bytes, offset, lineNo };
    offset += bytes.length;
    lineNo += countNewlines(bytes);
    return block;
  };
  for await (const piece of body as AsyncIterable<Uint8Array>) {
    const buf: Buffer = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    noteStreamedBytes(buf.length);
    const first = buf.indexOf(10);
    if (first === -1) {
      carry.push(buf);
      continue;
    }
    let pos = 0;
    if (carry.length > 0) {
      carry.push(buf.subarray(0, first + 1));
      yield emit(Buffer.concat(carry));
      carry = [];
      pos = first + 1;
    }
    const last = buf.lastIndexOf(10);
    if (last >= pos) yield emit(buf.subarray(pos, last + 1));
    if (last + 1 < buf.length) carry.push(buf.subarray(last + 1));
  }
  if (carry.length > 0) yield emit(Buffer.concat(carry));
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

/**
 * The hot path of input validation: reads one request line straight from its UTF-8 bytes, without
 * decoding the line or building its object, and says whether `requestLineSchema` would accept it.
 *
 * It is deliberately one-sided. `scanRequestLine` returns true only for a line that is well-formed
 * JSON whose top level is an object, with `custom_id` a string of 1-512 UTF-16 units, `method`
 * "POST", `url` a non-empty string and `body` an object with a non-empty string `model` (zod's
 * contract); and then the fields the checks after the schema need are in `out`. Anything else,
 * including valid but unusual lines (escapes in those fields or in keys, a repeated key, deep
 * nesting), returns false and the caller runs `JSON.parse` + zod on the decoded line, which decides
 * and words the error. So errors and their messages come from the contract, never from here; the
 * equivalence test runs both paths over the same corpus, bad lines included.
 */

/** What the checks after the schema read from an accepted line. */
export interface ScannedRequest {
  /** `custom_id`'s bytes are `b[customIdStart, customIdEnd)`, free of escapes: callers decode it only when they need the text. */
  customIdStart: number;
  customIdEnd: number;
  url: string;
  model: string;
  /** `body.stream === true`. */
  stream: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
/** Deeper lines go to JSON.parse, whose own limits then decide. */
const MAX_DEPTH = 64;
const CLOSERS = new Uint8Array(MAX_DEPTH);

/** 1 for bytes a JSON string may hold as they are: not `"`, not `\`, not a control character. */
const PLAIN = new Uint8Array(256);
for (let c = 0x20; c < 256; c++) PLAIN[c] = c === QUOTE || c === BACKSLASH ? 0 : 1;
/** 1 for JSON's whitespace. */
const SPACE = new Uint8Array(256);
SPACE[0x20] = SPACE[0x09] = SPACE[0x0a] = SPACE[0x0d] = 1;
const HEX = new Uint8Array(256);
for (const c of "0123456789abcdefABCDEF") HEX[c.charCodeAt(0)] = 1;
const ESCAPABLE = new Uint8Array(256);
for (const c of '"\\/bfnrtu') ESCAPABLE[c.charCodeAt(0)] = 1;

// Top-level and body keys the scanner reads, as bytes.
const K_CUSTOM_ID = bytesOf("custom_id");
const K_METHOD = bytesOf("method");
const K_URL = bytesOf("url");
const K_BODY = bytesOf("body");
const K_MODEL = bytesOf("model");
const K_STREAM = bytesOf("stream");
const POST = bytesOf("POST");
const TRUE = bytesOf("true");
const FALSE = bytesOf("false");
const NULL = bytesOf("null");

function bytesOf(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, "latin1"));
}

/** What the scan of one buffer keeps between its strings and lines. */
export interface ScanState {
  /** The buffer's memory as aligned 32-bit words, from the word holding `b[0]`. */
  words: Int32Array;
  /** How many bytes of the first word precede `b[0]`. */
  shift: number;
  /** The first backslash at or after `backslashFrom`, or -1 when there is none. */
  backslash: number;
  backslashFrom: number;
}

/** A fresh scan state for lines of `b`. */
export function scanState(b: Buffer): ScanState {
  const shift = b.byteOffset & 3;
  const words = new Int32Array(b.buffer, b.byteOffset - shift, (shift + b.length) >> 2);
  return { words, shift, backslash: -1, backslashFrom: Number.MAX_SAFE_INTEGER };
}

/**
 * True when the line `b[start, end)` is a request line zod would accept, with its fields in `out`;
 * false when the slow path must decide. `b` must be a Buffer (its fields are decoded from it); `s`
 * is `scanState(b)`, passed in by callers that scan many lines of one buffer.
 */
export function scanRequestLine(
  b: Buffer,
  start: number,
  end: number,
  out: ScannedRequest,
  s: ScanState = scanState(b),
): boolean {
  let i = skipSpace(b, start, end);
  if (i >= end || b[i] !== OPEN_OBJECT) return false;
  i = skipSpace(b, i + 1, end);
  let customIdStart = -1;
  let customIdEnd = -1;
  let method = false;
  let url: string | null = null;
  let bodyDone = false;
  if (i < end && b[i] === CLOSE_OBJECT) return false;
  for (;;) {
    if (i >= end || b[i] !== QUOTE) return false;
    const keyStart = i + 1;
    // The fields read are recognised by their bytes, without finding the key's end first.
    const k = b[keyStart];
    const field =
      k === 0x63 && spells(b, keyStart, end, K_CUSTOM_ID) ? K_CUSTOM_ID :
      k === 0x6d && spells(b, keyStart, end, K_METHOD) ? K_METHOD :
      k === 0x75 && spells(b, keyStart, end, K_URL) ? K_URL :
      k === 0x62 && spells(b, keyStart, end, K_BODY) ? K_BODY : null;
    // A key with escapes could spell a field differently; let JSON.parse read it.
    const keyEnd = field !== null ? keyStart + field.length : plainStringEnd(b, s, keyStart, end);
    if (keyEnd < 0) return false;
    i = skipSpace(b, keyEnd + 1, end);
    if (i >= end || b[i] !== COLON) return false;
    i = skipSpace(b, i + 1, end);
    if (i >= end) return false;
    const c = b[i];
    if (field === K_CUSTOM_ID) {
      if (customIdStart !== -1 || c !== QUOTE) return false;
      const e = plainStringEnd(b, s, i + 1, end);
      if (e < 0 || e === i + 1) return false;
      // At most 512 bytes is at most 512 UTF-16 units; only a longer one needs decoding to count them.
      if (e - (i + 1) > 512 && b.toString("utf8", i + 1, e).length > 512) return false;
      customIdStart = i + 1;
      customIdEnd = e;
      i = e + 1;
    } else if (field === K_METHOD) {
      if (method || c !== QUOTE) return false;
      const e = plainStringEnd(b, s, i + 1, end);
      if (e < 0 || !equals(b, i + 1, e, POST)) return false;
      method = true;
      i = e + 1;
    } else if (field === K_URL) {
      if (url !== null || c !== QUOTE) return false;
      const e = plainStringEnd(b, s, i + 1, end);
      if (e < 0 || e === i + 1) return false;
      url = sameAscii(b, i + 1, e, out.url) ? out.url : b.toString("utf8", i + 1, e);
      i = e + 1;
    } else if (field === K_BODY) {
      if (bodyDone || c !== OPEN_OBJECT) return false;
      i = scanBody(b, s, i, end, out);
      if (i < 0) return false;
      bodyDone = true;
    } else {
      i = skipValue(b, s, i, end);
      if (i < 0) return false;
    }
    i = skipSpace(b, i, end);
    if (i >= end) return false;
    if (b[i] === COMMA) {
      i = skipSpace(b, i + 1, end);
      continue;
    }
    if (b[i] !== CLOSE_OBJECT) return false;
    break;
  }
  // Nothing but whitespace may follow the object.
  if (skipSpace(b, i + 1, end) !== end) return false;
  if (customIdStart === -1 || !method || url === null || !bodyDone) return false;
  out.customIdStart = customIdStart;
  out.customIdEnd = customIdEnd;
  out.url = url;
  return true;
}

/** Reads `body` (an object at `b[i]`): its `model` into `out.model`, `stream === true` into `out.stream`. Index past it, or -1. */
function scanBody(b: Buffer, s: ScanState, i: number, end: number, out: ScannedRequest): number {
  let model: string | null = null;
  let stream: boolean | null = null;
  i = skipSpace(b, i + 1, end);
  if (i < end && b[i] === CLOSE_OBJECT) return -1;
  for (;;) {
    if (i >= end || b[i] !== QUOTE) return -1;
    const keyStart = i + 1;
    const k = b[keyStart];
    const field = k === 0x6d && spells(b, keyStart, end, K_MODEL) ? K_MODEL : k === 0x73 && spells(b, keyStart, end, K_STREAM) ? K_STREAM : null;
    const keyEnd = field !== null ? keyStart + field.length : plainStringEnd(b, s, keyStart, end);
    if (keyEnd < 0) return -1;
    i = skipSpace(b, keyEnd + 1, end);
    if (i >= end || b[i] !== COLON) return -1;
    i = skipSpace(b, i + 1, end);
    if (i >= end) return -1;
    if (field === K_MODEL) {
      if (model !== null || b[i] !== QUOTE) return -1;
      const e = plainStringEnd(b, s, i + 1, end);
      if (e < 0 || e === i + 1) return -1;
      model = sameAscii(b, i + 1, e, out.model) ? out.model : b.toString("utf8", i + 1, e);
      i = e + 1;
    } else if (field === K_STREAM) {
      if (stream !== null) return -1;
      const e = skipValue(b, s, i, end);
      if (e < 0) return -1;
      stream = equals(b, i, e, TRUE);
      i = e;
    } else {
      i = skipValue(b, s, i, end);
      if (i < 0) return -1;
    }
    i = skipSpace(b, i, end);
    if (i >= end) return -1;
    if (b[i] === COMMA) {
      i = skipSpace(b, i + 1, end);
      continue;
    }
    if (b[i] !== CLOSE_OBJECT) return -1;
    break;
  }
  if (model === null) return -1;
  out.model = model;
  out.stream = stream === true;
  return i + 1;
}

function skipSpace(b: Buffer, i: number, end: number): number {
  while (i < end && SPACE[b[i]!] === 1) i++;
  return i;
}

/** Strings at most this long are walked byte by byte; longer ones are searched natively. */
const SHORT_STRING = 24;
/** Escapes in one string after which the native search (two calls per escape) gives way to a walk. */
const DENSE_ESCAPES = 2;

/**
 * Index of the closing quote of the string whose content starts at `i`, or -1 if it is not a valid
 * JSON string. Keys and small values end within a few bytes and are walked; in a long one (a
 * prompt) the quote is found by `indexOf` and the bytes before it are checked for backslashes
 * (through the cached next one) and control characters (four bytes a step), which is several
 * times faster than testing every byte for all three. A string dense with escapes (text with many
 * newlines) is walked instead, where each escape costs no native call.
 */
function stringEnd(b: Buffer, s: ScanState, i: number, end: number): number {
  const stop = Math.min(end, i + SHORT_STRING);
  while (i < stop) {
    const c = b[i]!;
    if (PLAIN[c] === 1) {
      i++;
    } else if (c === QUOTE) {
      return i;
    } else {
      i = escapeEnd(b, i, end);
      if (i < 0) return -1;
    }
  }
  if (i >= end) return -1;
  // The quote may lie past the line (an unterminated string); then the line is not valid.
  let q = b.indexOf(QUOTE, i);
  for (let escapes = 0; ; escapes++) {
    if (q === -1 || q >= end) return -1;
    const bs = nextBackslash(b, s, i);
    if (bs === -1 || bs > q) return hasControl(b, s, i, q) ? -1 : q;
    if (hasControl(b, s, i, bs)) return -1;
    i = escapeEnd(b, bs, end);
    if (i < 0) return -1;
    if (escapes === DENSE_ESCAPES) return walkString(b, s, i, end);
    // The escape may have been the quote's own (\"): then search again past it.
    if (q < i) q = b.indexOf(QUOTE, i);
  }
}

/** `stringEnd` by walking: four bytes a step while none is a quote, a backslash or a control character. */
function walkString(b: Buffer, s: ScanState, i: number, end: number): number {
  const w = s.words;
  const lastWord = (end + s.shift) >> 2;
  for (;;) {
    while (i < end && ((i + s.shift) & 3) !== 0 && PLAIN[b[i]!] === 1) i++;
    if (((i + s.shift) & 3) === 0) {
      // Exact tests, as in hasControl: a byte's top bit is set iff that kind of byte is present.
      let k = (i + s.shift) >> 2;
      for (; k < lastWord; k++) {
        const x = w[k]!;
        const q = x ^ 0x22222222;
        const e = x ^ 0x5c5c5c5c;
        if ((((x - 0x20202020) & ~x) | ((q - 0x01010101) & ~q) | ((e - 0x01010101) & ~e)) & 0x80808080) break;
      }
      i = (k << 2) - s.shift;
    }
    while (i < end && PLAIN[b[i]!] === 1) i++;
    if (i >= end) return -1;
    if (b[i] === QUOTE) return i;
    i = escapeEnd(b, i, end);
    if (i < 0) return -1;
  }
}

/** Index past the escape sequence at `b[i]` (a backslash), or -1 when it is not one JSON allows. */
function escapeEnd(b: Buffer, i: number, end: number): number {
  if (b[i] !== BACKSLASH || i + 1 >= end) return -1;
  const e = b[i + 1]!;
  if (ESCAPABLE[e] !== 1) return -1;
  if (e !== 0x75) return i + 2;
  if (i + 6 > end || HEX[b[i + 2]!] !== 1 || HEX[b[i + 3]!] !== 1 || HEX[b[i + 4]!] !== 1 || HEX[b[i + 5]!] !== 1) return -1;
  return i + 6;
}

/** The first backslash at or after `i`, or -1: one native search serves every string up to it. */
function nextBackslash(b: Buffer, s: ScanState, i: number): number {
  if (i < s.backslashFrom || (s.backslash !== -1 && s.backslash < i)) {
    s.backslash = b.indexOf(BACKSLASH, i);
    s.backslashFrom = i;
  }
  return s.backslash;
}

/** Whether `b[from, to)` holds a byte below 0x20, which a JSON string may not hold as it is. */
function hasControl(b: Buffer, s: ScanState, from: number, to: number): boolean {
  // Byte by byte up to a word boundary of the underlying memory, then aligned 32-bit words.
  let i = from;
  while (i < to && ((i + s.shift) & 3) !== 0) if (b[i++]! < 0x20) return true;
  const w = s.words;
  let k = (i + s.shift) >> 2;
  const lastWord = (to + s.shift) >> 2;
  // (x - 0x20202020) & ~x has a byte's top bit set iff some byte of x is below 0x20 (exact for "any").
  for (; k + 4 <= lastWord; k += 4) {
    const a = w[k]!;
    const c = w[k + 1]!;
    const d = w[k + 2]!;
    const e = w[k + 3]!;
    if ((((a - 0x20202020) & ~a) | ((c - 0x20202020) & ~c) | ((d - 0x20202020) & ~d) | ((e - 0x20202020) & ~e)) & 0x80808080) return true;
  }
  for (; k < lastWord; k++) {
    const a = w[k]!;
    if (((a - 0x20202020) & ~a) & 0x80808080) return true;
  }
  for (i = Math.max(i, (k << 2) - s.shift); i < to; i++) if (b[i]! < 0x20) return true;
  return false;
}

/**
 * `stringEnd` for the strings the scanner reads (keys, custom_id, method, url, model), which it
 * leaves to JSON.parse when they hold an escape: the closing quote, or -1 for an escape too.
 */
function plainStringEnd(b: Buffer, s: ScanState, i: number, end: number): number {
  const stop = Math.min(end, i + SHORT_STRING);
  for (; i < stop; i++) {
    const c = b[i]!;
    if (PLAIN[c] !== 1) return c === QUOTE ? i : -1;
  }
  if (i >= end) return -1;
  const q = b.indexOf(QUOTE, i);
  if (q === -1 || q >= end) return -1;
  const bs = nextBackslash(b, s, i);
  if (bs !== -1 && bs < q) return -1;
  return hasControl(b, s, i, q) ? -1 : q;
}

/** True when the bytes spell `s` in ASCII, so decoding them would give `s` again (every line repeats its url and model). */
function sameAscii(b: Buffer, start: number, end: number, s: string): boolean {
  if (end - start !== s.length) return false;
  for (let k = 0; k < s.length; k++) {
    const c = b[start + k]!;
    if (c >= 0x80 || c !== s.charCodeAt(k)) return false;
  }
  return true;
}

/** Whether the string content starting at `b[i]` is exactly `word` (plain ASCII): its bytes, then the closing quote. */
function spells(b: Buffer, i: number, end: number, word: Uint8Array): boolean {
  const n = word.length;
  if (i + n >= end || b[i + n] !== QUOTE) return false;
  for (let k = 0; k < n; k++) if (b[i + k] !== word[k]) return false;
  return true;
}

function equals(b: Buffer, start: number, end: number, word: Uint8Array): boolean {
  if (end - start !== word.length) return false;
  for (let k = 0; k < word.length; k++) if (b[start + k] !== word[k]) return false;
  return true;
}

/** Index just past the JSON value starting at `b[i]`, or -1 when it is not one (or nests deeper than MAX_DEPTH). */
function skipValue(b: Buffer, s: ScanState, i: number, end: number): number {
  const c = b[i];
  if (c !== OPEN_OBJECT && c !== OPEN_ARRAY) return skipScalar(b, s, i, end);
  // Containers, without recursion: `closers` holds the closing byte of each open one. One array
  // serves every call (nothing here re-enters), so skipping a value allocates nothing.
  const closers = CLOSERS;
  let depth = 0;
  let fresh: boolean;
  for (;;) {
    // At the start of a value.
    let v = b[i];
    if (v === OPEN_OBJECT || v === OPEN_ARRAY) {
      if (depth === MAX_DEPTH) return -1;
      closers[depth++] = v === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY;
      i = skipSpace(b, i + 1, end);
      fresh = true;
    } else {
      i = skipScalar(b, s, i, end);
      if (i < 0) return -1;
      fresh = false;
    }
    // After a value, or just inside a container: close containers, or find where the next value starts.
    for (;;) {
      if (i >= end) return -1;
      v = b[i];
      const closer = closers[depth - 1];
      if (v === closer) {
        depth--;
        i++;
        if (depth === 0) return i;
        i = skipSpace(b, i, end);
        fresh = false;
        continue;
      }
      if (!fresh) {
        if (v !== COMMA) return -1;
        i = skipSpace(b, i + 1, end);
        if (i >= end) return -1;
      }
      if (closer === CLOSE_OBJECT) {
        if (b[i] !== QUOTE) return -1;
        const e = stringEnd(b, s, i + 1, end);
        if (e < 0) return -1;
        i = skipSpace(b, e + 1, end);
        if (i >= end || b[i] !== COLON) return -1;
        i = skipSpace(b, i + 1, end);
        if (i >= end) return -1;
      }
      break;
    }
  }
}

/** Index just past the string, number or literal at `b[i]`, or -1. */
function skipScalar(b: Buffer, s: ScanState, i: number, end: number): number {
  const c = b[i];
  if (c === QUOTE) {
    const e = stringEnd(b, s, i + 1, end);
    return e < 0 ? -1 : e + 1;
  }
  if (c === 0x74) return equals(b, i, Math.min(i + 4, end), TRUE) ? i + 4 : -1;
  if (c === 0x66) return equals(b, i, Math.min(i + 5, end), FALSE) ? i + 5 : -1;
  if (c === 0x6e) return equals(b, i, Math.min(i + 4, end), NULL) ? i + 4 : -1;
  return skipNumber(b, i, end);
}

/** JSON's number grammar: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)? */
function skipNumber(b: Buffer, i: number, end: number): number {
  if (i < end && b[i] === 0x2d) i++;
  if (i >= end) return -1;
  if (b[i] === 0x30) i++;
  else if (isDigit(b[i]!)) while (i < end && isDigit(b[i]!)) i++;
  else return -1;
  if (i < end && b[i] === 0x2e) {
    i++;
    if (i >= end || !isDigit(b[i]!)) return -1;
    while (i < end && isDigit(b[i]!)) i++;
  }
  if (i < end && (b[i] === 0x65 || b[i] === 0x45)) {
    i++;
    if (i < end && (b[i] === 0x2b || b[i] === 0x2d)) i++;
    if (i >= end || !isDigit(b[i]!)) return -1;
    while (i < end && isDigit(b[i]!)) i++;
  }
  return i;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

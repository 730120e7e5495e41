// The request-line scanner's byte work, in AssemblyScript, compiled to WebAssembly by
// `pnpm build:wasm` (infra/build-wasm.ts) into src/domain/request-line-scan.wasm.ts.
//
// src/domain/request-line-scan.ts copies a block of lines into this module's memory at `input()`
// and asks about one line at a time; it documents the contract. Here strings are searched sixteen
// bytes a step for their quote, backslash or control byte (SIMD), and the rest walks bytes as
// plain integer code, which is why it runs here rather than in JavaScript (its speed against the
// JavaScript scan is in test/bench/README.md, "Measured reasons").

const QUOTE: u32 = 0x22;
const BACKSLASH: u32 = 0x5c;
const OPEN_OBJECT: u32 = 0x7b;
const CLOSE_OBJECT: u32 = 0x7d;
const OPEN_ARRAY: u32 = 0x5b;
const CLOSE_ARRAY: u32 = 0x5d;
const COMMA: u32 = 0x2c;
const COLON: u32 = 0x3a;
const MAX_DEPTH: i32 = 64;

const CLOSERS: usize = memory.data(64);
/** What an accepted line's fields are: [customIdStart, customIdEnd, urlStart, urlEnd, modelStart, modelEnd, stream], as addresses in memory. */
const OUT: usize = memory.data(32, 16);

/** Where callers copy the bytes to scan: past the static data, 16-byte aligned. */
export function input(): usize {
  return (__heap_base + 15) & ~<usize>15;
}

/** Where an accepted line's fields are written. */
export function fields(): usize {
  return OUT;
}

@inline function at(i: i32): u32 {
  return <u32>load<u8>(<usize>i);
}

@inline function isSpace(c: u32): bool {
  return c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09;
}

function skipSpace(i: i32, end: i32): i32 {
  while (i < end && isSpace(at(i))) i++;
  return i;
}

/**
 * The first quote, backslash or control byte at or after `i`, sixteen bytes a step. It may read
 * up to 15 bytes past `end`; callers keep that much memory after the input.
 */
@inline function nextSpecial(i: i32, end: i32): i32 {
  const q = i8x16.splat(0x22);
  const bs = i8x16.splat(0x5c);
  const ctl = i8x16.splat(0x20);
  while (i < end) {
    const v = v128.load(<usize>i);
    const m = i8x16.bitmask(v128.or(v128.or(i8x16.eq(v, q), i8x16.eq(v, bs)), i8x16.lt_u(v, ctl)));
    if (m != 0) return i + ctz(m);
    i += 16;
  }
  return end;
}

@inline function isHex(c: u32): bool {
  return (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66);
}

/** Index past the escape sequence at `i` (a backslash), or -1 when it is not one JSON allows. */
function escapeEnd(i: i32, end: i32): i32 {
  if (i + 1 >= end) return -1;
  const e = at(i + 1);
  if (e == 0x75) {
    if (i + 6 > end || !isHex(at(i + 2)) || !isHex(at(i + 3)) || !isHex(at(i + 4)) || !isHex(at(i + 5))) return -1;
    return i + 6;
  }
  if (e == 0x22 || e == 0x5c || e == 0x2f || e == 0x62 || e == 0x66 || e == 0x6e || e == 0x72 || e == 0x74) return i + 2;
  return -1;
}

/** Index of the closing quote of the string whose content starts at `i`, or -1 if it is not a valid JSON string within the line. */
function stringEnd(i: i32, end: i32): i32 {
  while (true) {
    const p = nextSpecial(i, end);
    if (p >= end) return -1;
    const c = at(p);
    if (c == QUOTE) return p;
    if (c != BACKSLASH) return -1;
    i = escapeEnd(p, end);
    if (i < 0) return -1;
  }
}

/** `stringEnd` for the strings the scanner reads, which the slow path reads when they hold an escape: -1 for an escape too. */
function plainStringEnd(i: i32, end: i32): i32 {
  const p = nextSpecial(i, end);
  return p < end && at(p) == QUOTE ? p : -1;
}

/** `plainStringEnd` for the values the contract requires to be non-empty (custom_id, url, model): -1 for "" too. */
function filledStringEnd(i: i32, end: i32): i32 {
  const e = plainStringEnd(i, end);
  return e == i ? -1 : e;
}

/** Whether the string content at `i` is exactly `word` (ASCII), followed by its closing quote. */
function spells(i: i32, end: i32, word: string): bool {
  const n = word.length;
  return i + n < end && at(i + n) == QUOTE && equals(i, i + n, word);
}

/** Whether the bytes [start, end) are exactly `word` (ASCII). */
function equals(start: i32, end: i32, word: string): bool {
  const n = word.length;
  if (end - start != n) return false;
  for (let k = 0; k < n; k++) if (at(start + k) != <u32>word.charCodeAt(k)) return false;
  return true;
}

// Which known field a key is.
const F_OTHER = 0;
const F_CUSTOM_ID = 1;
const F_METHOD = 2;
const F_URL = 3;
const F_BODY = 4;
const F_MODEL = 5;
const F_STREAM = 6;

/**
 * 1 when the line [start, end) is a request line zod would accept (fields in `fields()`), 2 when
 * it is one but for a custom_id of more than 512 bytes (the caller counts its UTF-16 units), 0
 * when the slow path must decide.
 */
export function scanLine(start: i32, end: i32): i32 {
  let i = skipSpace(start, end);
  if (i >= end || at(i) != OPEN_OBJECT) return 0;
  i = skipSpace(i + 1, end);
  let customIdStart = -1;
  let customIdEnd = -1;
  let method = false;
  let urlStart = -1;
  let urlEnd = -1;
  let bodyDone = false;
  if (i < end && at(i) == CLOSE_OBJECT) return 0;
  while (true) {
    if (i >= end || at(i) != QUOTE) return 0;
    const keyStart = i + 1;
    const k = at(keyStart);
    // The fields read are recognised by their bytes, without finding the key's end first.
    let field = F_OTHER;
    let keyEnd: i32;
    if (k == 0x63 && spells(keyStart, end, "custom_id")) {
      field = F_CUSTOM_ID;
      keyEnd = keyStart + 9;
    } else if (k == 0x6d && spells(keyStart, end, "method")) {
      field = F_METHOD;
      keyEnd = keyStart + 6;
    } else if (k == 0x75 && spells(keyStart, end, "url")) {
      field = F_URL;
      keyEnd = keyStart + 3;
    } else if (k == 0x62 && spells(keyStart, end, "body")) {
      field = F_BODY;
      keyEnd = keyStart + 4;
    } else {
      // A key with escapes could spell a field differently; let JSON.parse read it.
      keyEnd = plainStringEnd(keyStart, end);
    }
    if (keyEnd < 0) return 0;
    i = skipSpace(keyEnd + 1, end);
    if (i >= end || at(i) != COLON) return 0;
    i = skipSpace(i + 1, end);
    if (i >= end) return 0;
    const c = at(i);
    if (field == F_CUSTOM_ID) {
      if (customIdStart != -1 || c != QUOTE) return 0;
      const e = filledStringEnd(i + 1, end);
      if (e < 0) return 0;
      customIdStart = i + 1;
      customIdEnd = e;
      i = e + 1;
    } else if (field == F_METHOD) {
      if (method || c != QUOTE) return 0;
      const e = plainStringEnd(i + 1, end);
      if (e < 0 || !equals(i + 1, e, "POST")) return 0;
      method = true;
      i = e + 1;
    } else if (field == F_URL) {
      if (urlStart != -1 || c != QUOTE) return 0;
      const e = filledStringEnd(i + 1, end);
      if (e < 0) return 0;
      urlStart = i + 1;
      urlEnd = e;
      i = e + 1;
    } else if (field == F_BODY) {
      if (bodyDone || c != OPEN_OBJECT) return 0;
      i = scanBody(i, end);
      if (i < 0) return 0;
      bodyDone = true;
    } else {
      i = skipValue(i, end);
      if (i < 0) return 0;
    }
    i = skipSpace(i, end);
    if (i >= end) return 0;
    const d = at(i);
    if (d == COMMA) {
      i = skipSpace(i + 1, end);
      continue;
    }
    if (d != CLOSE_OBJECT) return 0;
    break;
  }
  // Nothing but whitespace may follow the object.
  if (skipSpace(i + 1, end) != end) return 0;
  if (customIdStart == -1 || !method || urlStart == -1 || !bodyDone) return 0;
  store<i32>(OUT, customIdStart);
  store<i32>(OUT, customIdEnd, 4);
  store<i32>(OUT, urlStart, 8);
  store<i32>(OUT, urlEnd, 12);
  return customIdEnd - customIdStart > 512 ? 2 : 1;
}

/** Reads `body` (an object at `i`): `model`'s bytes and `stream === true` into OUT. Index past it, or -1. */
function scanBody(i: i32, end: i32): i32 {
  let modelStart = -1;
  let modelEnd = -1;
  let stream = -1;
  i = skipSpace(i + 1, end);
  if (i < end && at(i) == CLOSE_OBJECT) return -1;
  while (true) {
    if (i >= end || at(i) != QUOTE) return -1;
    const keyStart = i + 1;
    const k = at(keyStart);
    let field = F_OTHER;
    let keyEnd: i32;
    if (k == 0x6d && spells(keyStart, end, "model")) {
      field = F_MODEL;
      keyEnd = keyStart + 5;
    } else if (k == 0x73 && spells(keyStart, end, "stream")) {
      field = F_STREAM;
      keyEnd = keyStart + 6;
    } else {
      keyEnd = plainStringEnd(keyStart, end);
    }
    if (keyEnd < 0) return -1;
    i = skipSpace(keyEnd + 1, end);
    if (i >= end || at(i) != COLON) return -1;
    i = skipSpace(i + 1, end);
    if (i >= end) return -1;
    if (field == F_MODEL) {
      if (modelStart != -1 || at(i) != QUOTE) return -1;
      const e = filledStringEnd(i + 1, end);
      if (e < 0) return -1;
      modelStart = i + 1;
      modelEnd = e;
      i = e + 1;
    } else if (field == F_STREAM) {
      if (stream != -1) return -1;
      const e = skipValue(i, end);
      if (e < 0) return -1;
      stream = equals(i, e, "true") ? 1 : 0;
      i = e;
    } else {
      i = skipValue(i, end);
      if (i < 0) return -1;
    }
    i = skipSpace(i, end);
    if (i >= end) return -1;
    const d = at(i);
    if (d == COMMA) {
      i = skipSpace(i + 1, end);
      continue;
    }
    if (d != CLOSE_OBJECT) return -1;
    break;
  }
  if (modelStart == -1) return -1;
  store<i32>(OUT, modelStart, 16);
  store<i32>(OUT, modelEnd, 20);
  store<i32>(OUT, stream == 1 ? 1 : 0, 24);
  return i + 1;
}

/** Index just past the JSON value at `i`, or -1 when it is not one (or nests deeper than MAX_DEPTH). */
function skipValue(i: i32, end: i32): i32 {
  let v = at(i);
  if (v != OPEN_OBJECT && v != OPEN_ARRAY) return skipScalar(i, end);
  let depth = 0;
  let fresh: bool;
  while (true) {
    v = at(i);
    if (v == OPEN_OBJECT || v == OPEN_ARRAY) {
      if (depth == MAX_DEPTH) return -1;
      store<u8>(CLOSERS + <usize>depth, v == OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY);
      depth++;
      i = skipSpace(i + 1, end);
      fresh = true;
    } else {
      i = skipScalar(i, end);
      if (i < 0) return -1;
      fresh = false;
    }
    while (true) {
      if (i >= end) return -1;
      v = at(i);
      const closer = <u32>load<u8>(CLOSERS + <usize>(depth - 1));
      if (v == closer) {
        depth--;
        i++;
        if (depth == 0) return i;
        i = skipSpace(i, end);
        fresh = false;
        continue;
      }
      if (!fresh) {
        if (v != COMMA) return -1;
        i = skipSpace(i + 1, end);
        if (i >= end) return -1;
      }
      if (closer == CLOSE_OBJECT) {
        if (at(i) != QUOTE) return -1;
        const e = stringEnd(i + 1, end);
        if (e < 0) return -1;
        i = skipSpace(e + 1, end);
        if (i >= end || at(i) != COLON) return -1;
        i = skipSpace(i + 1, end);
        if (i >= end) return -1;
      }
      break;
    }
  }
}

/** Index just past the string, number or literal at `i`, or -1. */
function skipScalar(i: i32, end: i32): i32 {
  const c = at(i);
  if (c == QUOTE) {
    const e = stringEnd(i + 1, end);
    return e < 0 ? -1 : e + 1;
  }
  if (c == 0x74) return equals(i, min(i + 4, end), "true") ? i + 4 : -1;
  if (c == 0x66) return equals(i, min(i + 5, end), "false") ? i + 5 : -1;
  if (c == 0x6e) return equals(i, min(i + 4, end), "null") ? i + 4 : -1;
  return skipNumber(i, end);
}

@inline function isDigit(c: u32): bool {
  return c - 0x30 <= 9;
}

/** JSON's number grammar: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)? */
function skipNumber(i: i32, end: i32): i32 {
  if (i < end && at(i) == 0x2d) i++;
  if (i >= end) return -1;
  if (at(i) == 0x30) i++;
  else if (isDigit(at(i))) while (i < end && isDigit(at(i))) i++;
  else return -1;
  if (i < end && at(i) == 0x2e) {
    i++;
    if (i >= end || !isDigit(at(i))) return -1;
    while (i < end && isDigit(at(i))) i++;
  }
  if (i < end && (at(i) == 0x65 || at(i) == 0x45)) {
    i++;
    if (i < end && (at(i) == 0x2b || at(i) == 0x2d)) i++;
    if (i >= end || !isDigit(at(i))) return -1;
    while (i < end && isDigit(at(i))) i++;
  }
  return i;
}

// The byte classes of JSON and its string search, shared by the structure walk (json-values.ts)
// and the field reader (request-line-scan.ts). Strings are searched sixteen bytes a step for
// their quote, backslash or control byte (SIMD); the rest is plain integer code.

export const QUOTE: u32 = 0x22;
export const BACKSLASH: u32 = 0x5c;
export const OPEN_OBJECT: u32 = 0x7b;
export const CLOSE_OBJECT: u32 = 0x7d;
export const OPEN_ARRAY: u32 = 0x5b;
export const CLOSE_ARRAY: u32 = 0x5d;
export const COMMA: u32 = 0x2c;
export const COLON: u32 = 0x3a;

/** The byte at address `i`. */
@inline export function at(i: i32): u32 {
  return <u32>load<u8>(<usize>i);
}

/** Whether `c` is one of JSON's four whitespace bytes. */
@inline export function isSpace(c: u32): bool {
  return c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09;
}

/** Index of the first non-whitespace byte at or after `i`, or `end`. */
export function skipSpace(i: i32, end: i32): i32 {
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
export function stringEnd(i: i32, end: i32): i32 {
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
export function plainStringEnd(i: i32, end: i32): i32 {
  const p = nextSpecial(i, end);
  return p < end && at(p) == QUOTE ? p : -1;
}

/** `plainStringEnd` for the values the contract requires to be non-empty (custom_id, url, model): -1 for "" too. */
export function filledStringEnd(i: i32, end: i32): i32 {
  const e = plainStringEnd(i, end);
  return e == i ? -1 : e;
}

/** Whether the string content at `i` is exactly `word` (ASCII), followed by its closing quote. */
export function spells(i: i32, end: i32, word: string): bool {
  const n = word.length;
  return i + n < end && at(i + n) == QUOTE && equals(i, i + n, word);
}

/** Whether the bytes [start, end) are exactly `word` (ASCII). */
export function equals(start: i32, end: i32, word: string): bool {
  const n = word.length;
  if (end - start != n) return false;
  for (let k = 0; k < n; k++) if (at(start + k) != <u32>word.charCodeAt(k)) return false;
  return true;
}

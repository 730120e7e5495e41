// The JSON structure walk: skips a value the scanner does not read (any nesting, up to
// MAX_DEPTH), checking it against JSON's grammar so that an accepted line is one JSON.parse takes.

import {
  at,
  CLOSE_ARRAY,
  CLOSE_OBJECT,
  COLON,
  COMMA,
  equals,
  OPEN_ARRAY,
  OPEN_OBJECT,
  QUOTE,
  skipSpace,
  stringEnd,
} from "./json-bytes";

const MAX_DEPTH: i32 = 64;

/** The closing byte expected at each open nesting level. */
const CLOSERS: usize = memory.data(64);

/** Index just past the JSON value at `i`, or -1 when it is not one (or nests deeper than MAX_DEPTH). */
export function skipValue(i: i32, end: i32): i32 {
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

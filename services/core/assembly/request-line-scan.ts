// The request-line scanner's entry points, in AssemblyScript, compiled to WebAssembly by
// `pnpm build:wasm` (infra/build-wasm.ts) into src/domain/request-line-scan.wasm.ts. Only this
// file's exports are the module's; json-bytes.ts (byte classes, the SIMD string search) and
// json-values.ts (the structure walk over values it skips) are its imports.
//
// src/domain/request-line-scan.ts copies a block of lines into this module's memory at `input()`
// and asks about one line at a time; it documents the contract. The byte work runs here rather
// than in JavaScript for its speed (against the JavaScript scan: test/bench/README.md,
// "Measured reasons").

import {
  at,
  CLOSE_OBJECT,
  COLON,
  COMMA,
  equals,
  filledStringEnd,
  OPEN_OBJECT,
  plainStringEnd,
  QUOTE,
  skipSpace,
  spells,
} from "./json-bytes";
import { skipValue } from "./json-values";

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

/**
 * The hot path of input validation: reads one request line straight from its UTF-8 bytes, without
 * decoding the line or building its object, and says whether `requestLineSchema` would accept it.
 *
 * It is deliberately one-sided. `scanRequestLine` returns true only for a line that is well-formed
 * JSON whose top level is an object, with `custom_id` a string of 1-512 UTF-16 units, `method`
 * "POST", `url` a non-empty string and `body` an object with a non-empty string `model` (zod's
 * contract); and then the fields the checks after the schema need are in `out`. Anything else,
 * including valid but unusual lines (escapes in those fields or in keys, a repeated key, deep
 * nesting, bytes that are not UTF-8, a byte order mark, NUL), returns false and the caller runs `JSON.parse` + zod on the decoded line, which decides
 * and words the error. So errors and their messages come from the contract, never from here; the
 * equivalence test runs both paths over the same corpus, bad lines included.
 *
 * The byte work runs in WebAssembly (services/core/assembly/request-line-scan.ts, SIMD for
 * strings): each buffer of lines is copied into the module's memory once, and then each line costs
 * one call.
 */
import { isUtf8 } from "node:buffer";
import { REQUEST_LINE_SCAN_WASM } from "./request-line-scan.wasm.js";

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

interface ScannerExports {
  memory: WebAssembly.Memory;
  /** Where the bytes to scan go. */
  input(): number;
  /** Where an accepted line's fields are: custom_id, url and model as [start, end) addresses, then stream. */
  fields(): number;
  /** 1 accepted, 2 accepted but for a custom_id over 512 bytes (count its UTF-16 units), 0 slow path. */
  scanLine(start: number, end: number): number;
}

const compiled = new WebAssembly.Module(Buffer.from(REQUEST_LINE_SCAN_WASM, "base64"));
/** The scanner reads up to 15 bytes past a line (16-byte SIMD loads), so this much memory must follow the input. */
const TAIL = 16;
/** Memory kept after a buffer this large was scanned; above it a new instance lets the old memory go. */
const KEEP_BYTES = 8 * 1024 * 1024;
const PAGE = 64 * 1024;

/** One instance of the scanner with the buffer its memory holds. */
class Scanner {
  private readonly exports: ScannerExports;
  private readonly base: number;
  private fields: Int32Array;
  private bytes: Uint8Array;
  /** The state whose buffer is in memory now. */
  loaded: ScanState | null = null;

  constructor() {
    this.exports = new WebAssembly.Instance(compiled, {}).exports as unknown as ScannerExports;
    this.base = this.exports.input();
    this.bytes = new Uint8Array(this.exports.memory.buffer);
    this.fields = new Int32Array(this.exports.memory.buffer, this.exports.fields(), 7);
  }

  get size(): number {
    return this.bytes.length;
  }

  load(s: ScanState): void {
    const need = this.base + s.bytes.length + TAIL;
    if (need > this.bytes.length) {
      this.exports.memory.grow(Math.ceil((need - this.bytes.length) / PAGE));
      this.bytes = new Uint8Array(this.exports.memory.buffer);
      this.fields = new Int32Array(this.exports.memory.buffer, this.exports.fields(), 7);
    }
    this.bytes.set(s.bytes, this.base);
    this.loaded = s;
  }

  scan(b: Buffer, start: number, end: number, out: ScannedRequest): boolean {
    const base = this.base;
    const verdict = this.exports.scanLine(base + start, base + end);
    if (verdict === 0) return false;
    const f = this.fields;
    const customIdStart = f[0]! - base;
    const customIdEnd = f[1]! - base;
    // At most 512 bytes is at most 512 UTF-16 units; only a longer one needs decoding to count them.
    if (verdict === 2 && b.toString("utf8", customIdStart, customIdEnd).length > 512) return false;
    out.customIdStart = customIdStart;
    out.customIdEnd = customIdEnd;
    out.url = decodeField(b, f[2]! - base, f[3]! - base, out.url);
    out.model = decodeField(b, f[4]! - base, f[5]! - base, out.model);
    out.stream = f[6] === 1;
    return true;
  }
}

// One per process, like a compiled regular expression: the scanner is a pure function, and its
// memory is scratch space that every scan refills (`loaded` says with what).
let scanner = new Scanner();

/** A buffer of lines, ready to scan: copied into the scanner once, for all its lines. */
export interface ScanState {
  readonly bytes: Buffer;
  /** The whole buffer is UTF-8, so each of its lines is (a newline never ends inside a character). */
  readonly utf8: boolean;
}

/** A fresh scan state for lines of `b`. */
export function scanState(b: Buffer): ScanState {
  // One huge line grew the memory: start over rather than keep it for every later block.
  if (scanner.size > KEEP_BYTES && b.length + TAIL < KEEP_BYTES) scanner = new Scanner();
  const s = { bytes: b, utf8: isUtf8(b) };
  scanner.load(s);
  return s;
}

/**
 * True when the line `b[start, end)` is a request line zod would accept, with its fields in `out`;
 * false when the slow path must decide. `s` is `scanState(b)`, passed in by callers that scan many
 * lines of one buffer; another buffer scanned in between is copied back in.
 */
export function scanRequestLine(
  b: Buffer,
  start: number,
  end: number,
  out: ScannedRequest,
  s: ScanState = scanState(b),
): boolean {
  if (!s.utf8 && !isUtf8(b.subarray(start, end))) return false;
  if (scanner.loaded !== s) scanner.load(s);
  return scanner.scan(b, start, end, out);
}

/** The text of `b[start, end)`, reusing `previous` when the bytes spell it (every line repeats its url and model). */
function decodeField(b: Buffer, start: number, end: number, previous: string): string {
  return sameAscii(b, start, end, previous) ? previous : b.toString("utf8", start, end);
}

/** True when the bytes spell `s` in ASCII, so decoding them would give `s` again. */
function sameAscii(b: Buffer, start: number, end: number, s: string): boolean {
  if (end - start !== s.length) return false;
  for (let k = 0; k < s.length; k++) {
    const c = b[start + k]!;
    if (c >= 0x80 || c !== s.charCodeAt(k)) return false;
  }
  return true;
}

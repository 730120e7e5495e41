import type { BatchErrorEntry } from "../db/schema.js";
import { DEFAULT_MAX_LINE_BYTES, type LineBlock } from "../storage/lines.js";
import { FingerprintSet } from "./fingerprint-set.js";
import { isSupportedEndpoint } from "./request-line.js";
import { checkRequestLine, urlOfLine } from "./request-line-check.js";
import { scanRequestLine, scanState, type ScannedRequest } from "./request-line-scan.js";

/** Where one chunk of the input starts and how many requests it holds. */
export interface ChunkIndexEntry {
  idx: number;
  requestStart: number;
  requestCount: number;
  startOffset: number;
  endOffset: number;
  startLine: number;
}

export interface ValidationLimits {
  chunkSize: number;
  maxRequests: number;
  maxBytes: number;
  /** Errors listed in `errors.data`; more are summarised in one last entry. */
  maxErrors?: number;
  /** Longest line, its line break not counted (as the readers count it); a longer one is `line_too_large`. */
  maxLineBytes?: number;
}


/** How lines are judged beyond the limits. */
export interface ValidationRules {
  /** The batch's model replaces each line's body `model` (the one-shot form), so any or none is accepted. */
  anyModel?: boolean;
}

export interface ValidationResult {
  requests: number;
  bytes: number;
  endpoint: string | null;
  model: string | null;
  chunks: ChunkIndexEntry[];
  errors: BatchErrorEntry[];
}

/**
 * Streams a batch input file once, in blocks of whole lines (`readLineBlocks`), and checks every
 * line as OpenAI's Batch API does, recording a chunk index (offset and line of every
 * `chunkSize`-th request) for the agents' Range GETs.
 * `expectedEndpoint` is the batch's `endpoint`; every line's `url` must equal it. With none (an
 * upload, before any batch names one) the first request line's `url` sets it, or
 * /v1/chat/completions when that is not a supported endpoint (the line then reports it).
 * With `rules.anyModel` no line's model is checked, and `model` stays null.
 */
export async function validateBatchInput(
  blocks: AsyncIterable<LineBlock>,
  totalBytes: number,
  expectedEndpoint: string | null,
  limits: ValidationLimits,
  rules: ValidationRules = {},
): Promise<ValidationResult> {
  const anyModel = rules.anyModel === true;
  const maxErrors = limits.maxErrors ?? 100;
  const errors: BatchErrorEntry[] = [];
  let errorCount = 0;
  const fail = (code: string, message: string, line: number | null, param: string | null = null) => {
    errorCount++;
    if (errors.length < maxErrors) errors.push({ code, message, line, param });
  };

  let endpoint = expectedEndpoint ?? DEFAULT_ENDPOINT;
  const result: ValidationResult = { requests: 0, bytes: totalBytes, endpoint, model: null, chunks: [], errors };
  if (totalBytes > limits.maxBytes) {
    fail("file_too_large", `The input file is ${totalBytes} bytes; the limit is ${limits.maxBytes} bytes.`, null);
    return result;
  }
  if (expectedEndpoint !== null && !isSupportedEndpoint(expectedEndpoint)) {
    fail("unsupported_url", `Endpoint '${expectedEndpoint}' is not supported.`, null, "endpoint");
    return result;
  }

  const seen = new FingerprintSet();
  const scanned: ScannedRequest = { customIdStart: 0, customIdEnd: 0, url: "", model: "", stream: false };
  let current: ChunkIndexEntry | null = null;
  let sized = false;
  const maxLineBytes = limits.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const failTooLarge = (bytes: number, line: number) =>
    fail("line_too_large", `This line is ${bytes} bytes; the limit is ${maxLineBytes} bytes per line.`, line);
  /** Counts the request line at `offset` into the chunk index; false when it is one too many. */
  const count = (offset: number, line: number): boolean => {
    if (result.requests >= limits.maxRequests) {
      fail("too_many_tasks", `The input file has more than the maximum of ${limits.maxRequests} requests per batch.`, line);
      return false;
    }
    result.requests++;
    if (!current || current.requestCount === limits.chunkSize) {
      if (current) current.endOffset = offset;
      current = {
        idx: result.chunks.length,
        requestStart: result.requests - 1,
        requestCount: 0,
        startOffset: offset,
        endOffset: totalBytes,
        startLine: line,
      };
      result.chunks.push(current);
    }
    current.requestCount++;
    return true;
  };
  blocks: for await (const block of blocks) {
    const b = block.bytes;
    if (block.oversizedLineBytes !== undefined) {
      if (!count(block.offset, block.lineNo)) break blocks;
      failTooLarge(block.oversizedLineBytes, block.lineNo);
      continue;
    }
    const state = scanState(b);
    let pos = 0;
    let lineNo = block.lineNo;
    while (pos < b.length) {
      const nl = b.indexOf(10, pos);
      const lineEnd = nl === -1 ? b.length : nl;
      const endNoCr = lineEnd > pos && b[lineEnd - 1] === 13 ? lineEnd - 1 : lineEnd;
      const offset = block.offset + pos;
      const start = pos;
      const line = lineNo++;
      pos = lineEnd + 1;
      // A reader that caps lines already skipped these; one that does not may still hand one over.
      if (endNoCr - start > maxLineBytes) {
        if (!count(offset, line)) break blocks;
        failTooLarge(Math.min(pos, b.length) - start, line);
        continue;
      }
      // The fast path only accepts; anything it does not, the contract decides on the line's bytes.
      if (scanRequestLine(b, start, endNoCr, scanned, state)) {
        if (result.requests === 0 && expectedEndpoint === null) endpoint = result.endpoint = endpointNamed(scanned.url);
        if (!count(offset, line)) break blocks;
        const { customIdStart: from, customIdEnd: to } = scanned;
        const duplicate = seen.addUtf8(b, from, to) ? null : b.toString("utf8", from, to);
        checkRequest(scanned.url, anyModel ? null : scanned.model, scanned.stream, duplicate, line, endpoint, result, fail);
        continue;
      }
      const checked = checkRequestLine(b, start, endNoCr, offset === 0, anyModel);
      if (checked === null) continue;
      if (result.requests === 0 && expectedEndpoint === null) endpoint = result.endpoint = endpointNamed(urlOfLine(b, start, endNoCr));
      if (!count(offset, line)) break blocks;
      if (!checked.ok) {
        fail(checked.code, checked.message, line, checked.param);
        continue;
      }
      const duplicate = seen.add(checked.customId) ? null : checked.customId;
      checkRequest(checked.url, anyModel ? null : checked.model, checked.stream, duplicate, line, endpoint, result, fail);
    }
    if (!sized && result.requests > 0) {
      // Sized once from the first block's bytes per request, so the duplicate check's table is
      // allocated at its final size instead of doubling through the file (+5% for longer lines later).
      sized = true;
      const perRequest = (block.offset + b.length) / result.requests;
      seen.reserve(Math.min(limits.maxRequests, Math.ceil((totalBytes / perRequest) * 1.05)));
    }
  }
  const last = result.chunks.at(-1);
  if (last) last.endOffset = totalBytes;

  if (result.requests === 0 && errorCount === 0) fail("empty_file", "The input file contains no requests.", null);
  if (errorCount > errors.length) {
    errors.push({ code: "too_many_errors", message: `${errorCount - errors.length} more errors were not listed.`, line: null, param: null });
  }
  return result;
}

const DEFAULT_ENDPOINT = "/v1/chat/completions";

/** The endpoint a file's first request names: its url when we serve it, else the default. */
function endpointNamed(url: unknown): string {
  return typeof url === "string" && isSupportedEndpoint(url) ? url : DEFAULT_ENDPOINT;
}

type Fail = (code: string, message: string, line: number | null, param?: string | null) => void;

/**
 * The checks past the schema, on a line either path accepted; `duplicate` is its custom_id when
 * an earlier line had it, and `model` is null when the batch's model overrides the line's.
 */
function checkRequest(
  url: string,
  model: string | null,
  stream: boolean,
  duplicate: string | null,
  lineNo: number,
  expectedEndpoint: string,
  result: ValidationResult,
  fail: Fail,
): void {
  if (!isSupportedEndpoint(url)) {
    fail("unsupported_url", `URL '${url}' is not a supported endpoint.`, lineNo, "url");
  } else if (url !== expectedEndpoint) {
    fail("url_mismatch", `The url '${url}' does not match the batch endpoint '${expectedEndpoint}'.`, lineNo, "url");
  }
  if (stream) {
    fail("stream_unsupported", "Streaming ('stream': true) is not supported in batch requests.", lineNo, "body.stream");
  }
  if (model !== null && result.model === null) result.model = model;
  else if (model !== null && model !== result.model) {
    fail("model_mismatch", `The model '${model}' differs from '${result.model}' on earlier lines; a batch serves one model.`, lineNo, "body.model");
  }
  if (duplicate !== null) {
    fail("duplicate_custom_id", `The custom_id '${duplicate}' appears more than once in this file.`, lineNo, "custom_id");
  }
}

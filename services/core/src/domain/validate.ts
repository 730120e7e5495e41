import type { BatchErrorEntry } from "../db/schema.js";
import { isBlankLine, type LineBlock } from "../storage/lines.js";
import { FingerprintSet } from "./fingerprint-set.js";
import { isSupportedEndpoint, requestLineSchema } from "./request-line.js";
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
  /** The longest line (MAX_LINE_BYTES); unset, the readers' default. */
  maxLineBytes?: number;
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
 */
export async function validateBatchInput(
  blocks: AsyncIterable<LineBlock>,
  totalBytes: number,
  expectedEndpoint: string | null,
  limits: ValidationLimits,
): Promise<ValidationResult> {
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
  blocks: for await (const block of blocks) {
    const b = block.bytes;
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
      // The fast path only accepts; anything it does not, JSON.parse and zod decide on the decoded line.
      const fast = scanRequestLine(b, start, endNoCr, scanned, state);
      const text = fast ? "" : b.toString("utf8", start, endNoCr);
      if (!fast && isBlankLine(text)) continue;
      if (result.requests >= limits.maxRequests) {
        fail("too_many_tasks", `The input file has more than the maximum of ${limits.maxRequests} requests per batch.`, line);
        break blocks;
      }
      if (result.requests === 0 && expectedEndpoint === null) {
        endpoint = result.endpoint = endpointNamed(fast ? scanned.url : urlOf(text));
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
      if (fast) {
        const { customIdStart: from, customIdEnd: to } = scanned;
        const duplicate = seen.addUtf8(b, from, to) ? null : b.toString("utf8", from, to);
        checkRequest(scanned.url, scanned.model, scanned.stream, duplicate, line, endpoint, result, fail);
      } else {
        checkLineText(text, line, endpoint, seen, result, fail);
      }
    }
    if (!sized && result.requests > 0) {
      // Sized once from the first block's bytes per request, so the duplicate check's table is
      // allocated at its final size instead of doubling through the file (+5% for longer lines later).
      sized = true;
      const perRequest = (block.offset + b.length) / result.requests;
      seen.reserve(Math.min(limits.maxRequests, Math.ceil((totalBytes / perRequest) * 1.05)));
    }
  }
  if (current) current.endOffset = totalBytes;

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

/** The `url` of a line the scanner left to the contract, if it is JSON with one. */
function urlOf(text: string): unknown {
  try {
    return (JSON.parse(text) as { url?: unknown } | null)?.url;
  } catch {
    return undefined;
  }
}

type Fail = (code: string, message: string, line: number | null, param?: string | null) => void;

/** The slow path, and the declared contract: JSON.parse and `requestLineSchema` on the decoded line. */
function checkLineText(text: string, lineNo: number, expectedEndpoint: string, seen: FingerprintSet, result: ValidationResult, fail: Fail): void {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    fail("invalid_json_line", "This line is not parseable as valid JSON.", lineNo);
    return;
  }
  // reportInput: without it zod 4 leaves `issue.input` unset, so a wrong type looked missing.
  const parsed = requestLineSchema.safeParse(json, { reportInput: true });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const param = issue.path.join(".");
    const missing = issue.code === "invalid_type" && issue.input === undefined;
    fail(
      missing ? "missing_required_parameter" : "invalid_request_line",
      missing ? `Missing required parameter '${param}'.` : `Invalid value for '${param}': ${issue.message}.`,
      lineNo,
      param,
    );
    return;
  }
  const req = parsed.data;
  const duplicate = seen.add(req.custom_id) ? null : req.custom_id;
  checkRequest(req.url, req.body.model, req.body.stream === true, duplicate, lineNo, expectedEndpoint, result, fail);
}

/** The checks past the schema, on a line either path accepted; `duplicate` is its custom_id when an earlier line had it. */
function checkRequest(
  url: string,
  model: string,
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
  if (result.model === null) result.model = model;
  else if (model !== result.model) {
    fail("model_mismatch", `The model '${model}' differs from '${result.model}' on earlier lines; a batch serves one model.`, lineNo, "body.model");
  }
  if (duplicate !== null) {
    fail("duplicate_custom_id", `The custom_id '${duplicate}' appears more than once in this file.`, lineNo, "custom_id");
  }
}

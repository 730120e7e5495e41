import type { BatchErrorEntry } from "../db/schema.js";
import type { Line } from "../storage/lines.js";
import { FingerprintSet } from "./fingerprint-set.js";
import { isSupportedEndpoint, requestLineSchema } from "./request-line.js";

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
 * Streams a batch input file once and checks every line as OpenAI's Batch API does, recording
 * a chunk index (offset and line of every `chunkSize`-th request) for the agents' Range GETs.
 * `expectedEndpoint` is the batch's `endpoint`; every line's `url` must equal it.
 */
export async function validateBatchInput(
  lines: AsyncIterable<Line>,
  totalBytes: number,
  expectedEndpoint: string,
  limits: ValidationLimits,
): Promise<ValidationResult> {
  const maxErrors = limits.maxErrors ?? 100;
  const errors: BatchErrorEntry[] = [];
  let errorCount = 0;
  const fail = (code: string, message: string, line: number | null, param: string | null = null) => {
    errorCount++;
    if (errors.length < maxErrors) errors.push({ code, message, line, param });
  };

  const result: ValidationResult = { requests: 0, bytes: totalBytes, endpoint: expectedEndpoint, model: null, chunks: [], errors };
  if (totalBytes > limits.maxBytes) {
    fail("file_too_large", `The input file is ${totalBytes} bytes; the limit is ${limits.maxBytes} bytes.`, null);
    return result;
  }
  if (!isSupportedEndpoint(expectedEndpoint)) {
    fail("unsupported_url", `Endpoint '${expectedEndpoint}' is not supported.`, null, "endpoint");
    return result;
  }

  const seen = new FingerprintSet();
  let current: ChunkIndexEntry | null = null;
  for await (const line of lines) {
    if (line.text.trim() === "") continue;
    if (result.requests >= limits.maxRequests) {
      fail("too_many_tasks", `The input file has more than the maximum of ${limits.maxRequests} requests per batch.`, line.lineNo);
      break;
    }
    result.requests++;
    if (!current || current.requestCount === limits.chunkSize) {
      if (current) current.endOffset = line.offset;
      current = {
        idx: result.chunks.length,
        requestStart: result.requests - 1,
        requestCount: 0,
        startOffset: line.offset,
        endOffset: totalBytes,
        startLine: line.lineNo,
      };
      result.chunks.push(current);
    }
    current.requestCount++;
    checkLine(line, expectedEndpoint, seen, result, fail);
  }
  if (current) current.endOffset = totalBytes;

  if (result.requests === 0 && errorCount === 0) fail("empty_file", "The input file contains no requests.", null);
  if (errorCount > errors.length) {
    errors.push({ code: "too_many_errors", message: `${errorCount - errors.length} more errors were not listed.`, line: null, param: null });
  }
  return result;
}

function checkLine(
  line: Line,
  expectedEndpoint: string,
  seen: FingerprintSet,
  result: ValidationResult,
  fail: (code: string, message: string, line: number | null, param?: string | null) => void,
): void {
  let json: unknown;
  try {
    json = JSON.parse(line.text);
  } catch {
    fail("invalid_json_line", "This line is not parseable as valid JSON.", line.lineNo);
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
      line.lineNo,
      param,
    );
    return;
  }
  const req = parsed.data;
  if (!isSupportedEndpoint(req.url)) {
    fail("unsupported_url", `URL '${req.url}' is not a supported endpoint.`, line.lineNo, "url");
  } else if (req.url !== expectedEndpoint) {
    fail("url_mismatch", `The url '${req.url}' does not match the batch endpoint '${expectedEndpoint}'.`, line.lineNo, "url");
  }
  if (req.body.stream === true) {
    fail("stream_unsupported", "Streaming ('stream': true) is not supported in batch requests.", line.lineNo, "body.stream");
  }
  if (result.model === null) result.model = req.body.model;
  else if (req.body.model !== result.model) {
    fail("model_mismatch", `The model '${req.body.model}' differs from '${result.model}' on earlier lines; a batch serves one model.`, line.lineNo, "body.model");
  }
  if (!seen.add(req.custom_id)) {
    fail("duplicate_custom_id", `The custom_id '${req.custom_id}' appears more than once in this file.`, line.lineNo, "custom_id");
  }
}

import {
  getObjectStream,
  InvalidRequest,
  isSupportedEndpoint,
  readLines,
  validateBatchInput,
  type Line,
} from "@barge/core";
import type { ApiDeps } from "./deps.js";

const DEFAULT_ENDPOINT = "/v1/chat/completions";

/**
 * Streams an uploaded batch input once, as the batch validator will, and returns its first
 * problem as a 400 (`Line N: ...`, param `file`), or null when it would validate. The endpoint
 * to check against is the first line's `url`; no batch names one yet.
 */
export async function checkBatchInput(deps: ApiDeps, key: string, bytes: number): Promise<InvalidRequest | null> {
  const body = await getObjectStream(deps, key);
  try {
    const lines = readLines(body);
    const first = await firstRequestLine(lines);
    const result = await validateBatchInput(replay(first, lines), bytes, endpointOf(first), {
      chunkSize: deps.config.CHUNK_SIZE,
      maxRequests: deps.config.MAX_REQUESTS_PER_BATCH,
      maxBytes: deps.config.MAX_FILE_BYTES,
      maxErrors: 1,
    });
    const e = result.errors[0];
    if (!e) return null;
    return new InvalidRequest(e.line === null ? e.message : `Line ${e.line}: ${e.message}`, "file", e.code);
  } finally {
    // Validation may stop early (too many requests); never leave the S3 response open.
    body.destroy();
  }
}

/** The first non-blank line; blank ones are skipped by validation, so they need no replay. */
async function firstRequestLine(lines: AsyncGenerator<Line>): Promise<Line | undefined> {
  for (;;) {
    const next = await lines.next();
    if (next.done) return undefined;
    if (next.value.text.trim() !== "") return next.value;
  }
}

async function* replay(first: Line | undefined, rest: AsyncGenerator<Line>): AsyncGenerator<Line> {
  if (first) yield first;
  yield* rest;
}

/** The line's `url` when it is a supported endpoint, so a bad url is reported on its line. */
function endpointOf(line: Line | undefined): string {
  if (!line) return DEFAULT_ENDPOINT;
  try {
    const url = (JSON.parse(line.text) as { url?: unknown } | null)?.url;
    return typeof url === "string" && isSupportedEndpoint(url) ? url : DEFAULT_ENDPOINT;
  } catch {
    return DEFAULT_ENDPOINT;
  }
}

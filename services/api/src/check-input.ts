import type { Readable } from "node:stream";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import {
  inputCheckOf,
  InvalidRequest,
  isSupportedEndpoint,
  readLineBlocks,
  validateBatchInput,
  type InputCheck,
  type LineBlock,
} from "@barge/core";
import type { ApiDeps } from "./deps.js";

const DEFAULT_ENDPOINT = "/v1/chat/completions";

/** The upload check's answer: the size it read, and its first problem as a 400 or the record of a clean pass. */
export type UploadCheck = { bytes: number } & ({ problem: InvalidRequest; check?: undefined } | { problem?: undefined; check: InputCheck | null });

/**
 * Streams an uploaded batch input once, as the batch validator will, and returns its first
 * problem as a 400 (`Line N: ...`, param `file`), or the record of a clean pass (ETag and size
 * from the GET that was read) for the batch validator to reuse. The endpoint to check against is
 * the first line's `url`; no batch names one yet.
 */
export async function checkBatchInput(deps: ApiDeps, key: string): Promise<UploadCheck> {
  const res = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }));
  const body = res.Body as Readable;
  const bytes = res.ContentLength ?? 0;
  try {
    const blocks = readLineBlocks(body);
    const { endpoint, seen } = await firstRequestEndpoint(blocks);
    const result = await validateBatchInput(replay(seen, blocks), bytes, endpoint, {
      chunkSize: deps.config.CHUNK_SIZE,
      maxRequests: deps.config.MAX_REQUESTS_PER_BATCH,
      maxBytes: deps.config.MAX_FILE_BYTES,
      maxErrors: 1,
    });
    const e = result.errors[0];
    if (!e) return { bytes, check: inputCheckOf(result, { etag: res.ETag ?? "", bytes }, deps.config.CHUNK_SIZE) };
    return { bytes, problem: new InvalidRequest(e.line === null ? e.message : `Line ${e.line}: ${e.message}`, "file", e.code) };
  } finally {
    // Validation may stop early (too many requests); never leave the S3 response open.
    body.destroy();
  }
}

/**
 * The endpoint named by the first non-blank line, reading blocks until one holds it; the blocks
 * read are returned for replay (usually just the first).
 */
async function firstRequestEndpoint(blocks: AsyncGenerator<LineBlock>): Promise<{ endpoint: string; seen: LineBlock[] }> {
  const seen: LineBlock[] = [];
  for (;;) {
    const next = await blocks.next();
    if (next.done) return { endpoint: DEFAULT_ENDPOINT, seen };
    seen.push(next.value);
    const b = next.value.bytes;
    for (let pos = 0; pos < b.length; ) {
      const nl = b.indexOf(10, pos);
      const end = nl === -1 ? b.length : nl;
      const text = b.toString("utf8", pos, end > pos && b[end - 1] === 13 ? end - 1 : end);
      // Blank lines are skipped by validation, so they cannot name the endpoint.
      if (text.trim() !== "") return { endpoint: endpointOf(text), seen };
      pos = end + 1;
    }
  }
}

async function* replay(seen: LineBlock[], rest: AsyncGenerator<LineBlock>): AsyncGenerator<LineBlock> {
  yield* seen;
  yield* rest;
}

/** The line's `url` when it is a supported endpoint, so a bad url is reported on its line. */
function endpointOf(text: string): string {
  try {
    const url = (JSON.parse(text) as { url?: unknown } | null)?.url;
    return typeof url === "string" && isSupportedEndpoint(url) ? url : DEFAULT_ENDPOINT;
  } catch {
    return DEFAULT_ENDPOINT;
  }
}

import { getObject, inputCheckOf, InvalidRequest, readLineBlocks, validateBatchInput, type InputCheck } from "@barge/core";
import type { ApiDeps } from "./deps.js";

/** The upload check's answer: the size it read, and its first problem as a 400 or the record of a clean pass. */
export type UploadCheck = { bytes: number } & ({ problem: InvalidRequest; check?: undefined } | { problem?: undefined; check: InputCheck | null });

/**
 * Streams an uploaded batch input once, as the batch validator will, and returns its first
 * problem as a 400 (`Line N: ...`, param `file`), or the record of a clean pass (ETag and size
 * from the GET that was read) for the batch validator to reuse. No batch names an endpoint yet, so
 * the first request line's `url` sets the one every line must match.
 */
export async function checkBatchInput(deps: ApiDeps, key: string): Promise<UploadCheck> {
  const { body, bytes, etag } = await getObject(deps, key);
  try {
    const result = await validateBatchInput(readLineBlocks(body, { maxLineBytes: deps.config.MAX_LINE_BYTES }), bytes, null, {
      chunkSize: deps.config.CHUNK_SIZE,
      maxRequests: deps.config.MAX_REQUESTS_PER_BATCH,
      maxBytes: deps.config.MAX_FILE_BYTES,
      maxErrors: 1,
      maxLineBytes: deps.config.MAX_LINE_BYTES,
    });
    const e = result.errors[0];
    if (!e) return { bytes, check: inputCheckOf(result, { etag, bytes }, deps.config.CHUNK_SIZE) };
    return { bytes, problem: new InvalidRequest(e.line === null ? e.message : `Line ${e.line}: ${e.message}`, "file", e.code) };
  } finally {
    // Validation may stop early (too many requests); never leave the S3 response open.
    body.destroy();
  }
}

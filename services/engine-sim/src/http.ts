import type { IncomingMessage, ServerResponse } from "node:http";
import { type ApiError, payloadTooLarge } from "./errors.js";

// Reading request bodies and writing responses. Every response goes through send(), so every
// one carries the x-barge-simulated header and echoes the caller's request id.

const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** Collects a request body and hands it to onBody, or answers 413 when it is over the size limit. */
export function readBody(req: IncomingMessage, res: ServerResponse, requestId: string | null, onBody: (raw: string) => void): void {
  const chunks: Buffer[] = [];
  let bytes = 0;
  req.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes <= MAX_BODY_BYTES) chunks.push(chunk);
  });
  req.on("end", () => {
    if (bytes > MAX_BODY_BYTES) {
      sendError(res, payloadTooLarge(MAX_BODY_BYTES), requestId);
    } else {
      onBody(chunks.length === 1 ? (chunks[0] as Buffer).toString("utf8") : Buffer.concat(chunks).toString("utf8"));
    }
  });
  // A client that disconnects mid-upload makes the request emit "error"; there is nobody left
  // to answer, and without a listener it would crash the process.
  req.on("error", () => {});
}

/** Answers with an error in vLLM's body shape and the error's status. */
export function sendError(res: ServerResponse, error: ApiError, requestId: string | null): void {
  sendJson(res, error.status, JSON.stringify(error.body()), requestId);
}

/** Answers with an already-serialized JSON payload. */
export function sendJson(res: ServerResponse, status: number, payload: string, requestId: string | null): void {
  send(res, status, payload, "application/json", requestId);
}

/** Answers with the sim's common headers and the whole payload. */
export function send(res: ServerResponse, status: number, payload: string, contentType: string, requestId: string | null): void {
  const headers: Record<string, string | number> = {
    "content-type": contentType,
    "content-length": Buffer.byteLength(payload),
    "x-barge-simulated": "true",
  };
  // vLLM echoes the caller's request id, which clients use to correlate logs.
  if (requestId !== null) headers["x-request-id"] = requestId;
  res.writeHead(status, headers);
  res.end(payload);
}

/** The host to put in the sim's URL: a wildcard listen address becomes loopback, IPv6 gets brackets. */
export function urlHost(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}

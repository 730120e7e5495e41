import { randomBytes } from "node:crypto";
import { Agent, createServer, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import { UNSIGNED_PAYLOAD } from "@smithy/signature-v4";
import { PRESIGN_PARAMS, SigV4Verifier, type AuthRefusal } from "./sigv4-verify.js";
import type { S3Credentials } from "./s3-credentials.js";
import { S3RVER_KEY } from "./s3.js";

/** A listening SigV4-checking front for an S3 server on a private Unix socket. */
export interface S3AuthProxy {
  port: number;
  close(): Promise<void>;
}

const PRESIGN_KEYS = new Set<string>(PRESIGN_PARAMS);
/** How much of a refused request's body is read (and dropped) before answering anyway. */
const DRAIN_LIMIT_BYTES = 1024 * 1024;

/**
 * Listens on `port` (loopback) and lets through to `upstreamSocket` only requests signed with
 * `creds`; everything else, browser-form POSTs included, gets S3's 403 XML and its body is never
 * parsed (a small one is read and dropped). Accepted requests are piped both ways unbuffered,
 * vouched for to the lenient s3rver behind as its own account (see `vouched`).
 */
export async function startS3AuthProxy(opts: { port: number; upstreamSocket: string; creds: S3Credentials }): Promise<S3AuthProxy> {
  const verifier = new SigV4Verifier(opts.creds);
  const agent = new Agent({ keepAlive: true });
  /** Verifies first; a client waiting on `Expect: 100-continue` is told to send its body only once accepted. */
  const handle = (req: IncomingMessage, res: ServerResponse, awaitsContinue: boolean) => {
    // A browser's CORS preflight carries no credentials by design and no body: s3rver answers it
    // from the bucket's CORS rules, and the PUT that follows is verified like any other request.
    if (isCorsPreflight(req)) return forward(req, res, opts.upstreamSocket, agent);
    verifier.verify({ method: req.method ?? "GET", url: req.url ?? "/", headers: req.headers }).then(
      (refusal) => {
        if (refusal) return refuse(req, res, refusal, awaitsContinue);
        if (awaitsContinue) res.writeContinue();
        forward(req, res, opts.upstreamSocket, agent);
      },
      () => refuse(req, res, { code: "AccessDenied", message: "The request's authentication could not be checked" }, awaitsContinue),
    );
  };
  const server = createServer((req, res) => handle(req, res, false));
  server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => handle(req, res, true));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, "127.0.0.1", () => resolve());
  });
  return {
    port: opts.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      }),
  };
}

/** An `OPTIONS` with the two headers only a browser's preflight sends, and no body. */
function isCorsPreflight(req: IncomingMessage): boolean {
  const h = req.headers;
  return req.method === "OPTIONS" && !!h.origin && !!h["access-control-request-method"] && !h["content-length"] && !h["transfer-encoding"];
}

/** Pipes an accepted request to the S3 server and its answer back; an unreachable server is S3's 503. */
function forward(req: IncomingMessage, res: ServerResponse, upstreamSocket: string, agent: Agent): void {
  const headers = vouched(withoutHopHeaders(req.headers));
  const up = request({ socketPath: upstreamSocket, method: req.method, path: withoutPresignParams(req.url ?? "/"), headers, agent }, (upRes) => {
    res.writeHead(upRes.statusCode ?? 502, withoutHopHeaders(upRes.headers));
    upRes.pipe(res);
  });
  up.on("error", () => {
    if (res.headersSent) res.destroy();
    else sendError(req, res, 503, { code: "ServiceUnavailable", message: "The embedded S3 did not answer; retry." }, false);
  });
  res.on("close", () => {
    if (!res.writableFinished) up.destroy();
  });
  req.pipe(up);
}

/**
 * Answers 403 once a small body has been read and dropped, so the client sees the answer
 * rather than a broken pipe; a larger body is cut off after the answer instead of being drained.
 */
function refuse(req: IncomingMessage, res: ServerResponse, refusal: AuthRefusal | { code: string; message: string }, awaitsContinue: boolean): void {
  // A client waiting for 100 Continue sends no body: answer now.
  if (awaitsContinue) return sendError(req, res, 403, refusal, true);
  let seen = 0;
  const answer = () => {
    if (!res.headersSent) sendError(req, res, 403, refusal, true);
  };
  req.on("data", (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > DRAIN_LIMIT_BYTES) {
      req.pause();
      answer();
    }
  });
  req.once("end", answer);
  req.once("error", () => res.destroy());
}

/** S3's error document; `close` ends the connection so an unread upload body is dropped, not drained. */
function sendError(req: IncomingMessage, res: ServerResponse, status: number, e: { code: string; message: string }, close: boolean): void {
  const body =
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${e.code}</Code><Message>${xmlText(e.message)}</Message>` +
    `<Resource>${xmlText((req.url ?? "/").split("?")[0]!)}</Resource><RequestId>${randomBytes(8).toString("hex").toUpperCase()}</RequestId></Error>`;
  res.writeHead(status, {
    "content-type": "application/xml",
    "content-length": Buffer.byteLength(body),
    ...(close ? { connection: "close" } : {}),
  });
  res.end(req.method === "HEAD" ? undefined : body);
}

/**
 * The headers s3rver wants to see a request as its own account's: a V4 Authorization naming its
 * built-in key (it checks the key, not the signature, which was checked here) and a current
 * x-amz-date. Anonymous requests would do for most calls, but s3rver refuses response-header
 * overrides (`response-content-disposition`...) on those.
 */
function vouched(h: IncomingHttpHeaders): IncomingHttpHeaders {
  const longDate = new Date().toISOString().replace(/[-:]|\.\d{3}/g, "");
  const out = { ...h, "x-amz-date": longDate, "x-amz-content-sha256": h["x-amz-content-sha256"] ?? UNSIGNED_PAYLOAD };
  out.authorization = `AWS4-HMAC-SHA256 Credential=${S3RVER_KEY}/${longDate.slice(0, 8)}/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=${"0".repeat(64)}`;
  // Already answered here; the body follows right away.
  delete out.expect;
  return out;
}

/** Headers of one hop only: each side of the proxy keeps its own connection. */
function withoutHopHeaders(h: IncomingHttpHeaders): IncomingHttpHeaders {
  const out = { ...h };
  delete out.connection;
  delete out["keep-alive"];
  return out;
}

/** The target without the presigned URL's own parameters, every other byte as sent. */
function withoutPresignParams(url: string): string {
  const q = url.indexOf("?");
  if (q < 0) return url;
  const kept = url
    .slice(q + 1)
    .split("&")
    .filter((pair) => !PRESIGN_KEYS.has(safeDecode(pair.split("=")[0]!)));
  return kept.length ? `${url.slice(0, q)}?${kept.join("&")}` : url.slice(0, q);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function xmlText(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

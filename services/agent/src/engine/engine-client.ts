import { Pool, errors as undiciErrors } from "undici";
import { backoffDelay } from "@barge/core";
import type { FailureCode } from "../run/result-line.js";

export interface EngineClientOptions {
  /** The engine's base URL (VLLM_URL); a path prefix, if any, is kept. */
  baseUrl: string;
  /** Keep-alive connections to hold open; at least the request concurrency, or requests queue in the pool. */
  connections: number;
  /** Per-attempt deadline covering headers and body (ENGINE_TIMEOUT_MS). */
  timeoutMs: number;
  /** Attempts per request, the first included (ENGINE_MAX_ATTEMPTS). */
  maxAttempts: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** Source of jitter; injectable so tests can pin delays. */
  random?: () => number;
}

export interface EngineRequest {
  url: string;
  body: unknown;
  /** Sent as `x-request-id`, which vLLM echoes and logs: `<batchId>:<requestIndex>`. */
  requestId: string;
}

export interface EngineResponse {
  status: number;
  /** Parsed JSON, or the raw text when the engine answered something else. */
  body: unknown;
  /** The engine's echoed `x-request-id`, or ours when it echoed none. */
  requestId: string;
  attempts: number;
  /** Some attempt was answered 429 or 503: the engine was full, which the concurrency controller backs off from. */
  backpressure?: boolean;
}

/** The engine never answered (connection refused or reset, or timed out) on any attempt. */
export class EngineRequestError extends Error {
  constructor(
    readonly code: FailureCode,
    message: string,
    readonly attempts: number,
    /** The last attempt found nothing listening: the engine is down, not this request's problem. */
    readonly refused = false,
  ) {
    super(message);
    this.name = "EngineRequestError";
  }
}

/** The HTTP client for the local OpenAI-compatible engine. */
export interface EngineClient {
  /** POSTs one request, retrying transient failures; a caller abort rejects with the abort reason. */
  send(req: EngineRequest, signal?: AbortSignal): Promise<EngineResponse>;
  /** The model ids the engine serves (GET /v1/models), in one attempt. */
  models(signal?: AbortSignal): Promise<string[]>;
  /** Drops every connection; in-flight requests fail. */
  close(): Promise<void>;
}

/** The HTTP engine client also reads the engine's load, which stand-in engines need not offer. */
export interface HttpEngineClient extends EngineClient {
  /** The engine's Prometheus text (GET /metrics), in one attempt. */
  metrics(signal?: AbortSignal): Promise<string>;
}

/** One attempt's non-HTTP failure, before the retry loop decides what to do with it. */
class AttemptFailure extends Error {
  constructor(
    readonly code: FailureCode,
    message: string,
    readonly refused = false,
  ) {
    super(message);
  }
}

interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** Creates an engine client over one keep-alive undici Pool. */
export function createEngineClient(opts: EngineClientOptions): HttpEngineClient {
  const base = new URL(opts.baseUrl);
  const prefix = base.pathname.replace(/\/+$/, "");
  const backoffBase = opts.backoffBaseMs ?? 100;
  const backoffCap = opts.backoffCapMs ?? 10_000;
  const random = opts.random ?? Math.random;
  // undici's own header/body timeouts (300 s by default) would cut long generations short of
  // ENGINE_TIMEOUT_MS; one deadline, ours, covers the whole attempt instead.
  // Per caller signal, the aborts of the attempts running under it. A chunk run passes one signal
  // for all its requests: a listener each would make every add and remove O(in flight).
  const linked = new WeakMap<AbortSignal, Set<() => void>>();
  function onAbort(signal: AbortSignal, abort: () => void): () => void {
    let members = linked.get(signal);
    if (!members) {
      const set = new Set<() => void>();
      linked.set(signal, set);
      const abortAll = () => {
        for (const fn of set) fn();
        set.clear();
      };
      signal.addEventListener("abort", abortAll, { once: true });
      members = set;
    }
    members.add(abort);
    return () => members.delete(abort);
  }

  /** A retry's backoff, cut short by the caller's abort (linked like an attempt, not a listener of its own). */
  function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = setTimeout(() => {
        unlink?.();
        resolve();
      }, ms);
      const unlink = signal
        ? onAbort(signal, () => {
            clearTimeout(timer);
            reject(signal.reason);
          })
        : undefined;
    });
  }

  const pool = new Pool(base.origin, {
    connections: opts.connections,
    headersTimeout: 0,
    bodyTimeout: 0,
    keepAliveTimeout: 30_000,
  });

  async function once(method: "GET" | "POST", path: string, headers: Record<string, string>, body: string | undefined, signal?: AbortSignal): Promise<RawAnswer> {
    signal?.throwIfAborted();
    const ctl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, opts.timeoutMs);
    const unlink = signal ? onAbort(signal, () => ctl.abort(signal.reason)) : undefined;
    try {
      const res = await pool.request({ method, path: prefix + path, headers, body, signal: ctl.signal });
      // The body is always read to the end, so the connection goes back to the pool.
      const text = await res.body.text();
      return { status: res.statusCode, headers: res.headers, text };
    } catch (err) {
      if (signal?.aborted) throw signal.reason ?? err;
      if (timedOut || err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
        throw new AttemptFailure("request_timeout", `the engine did not answer within ${opts.timeoutMs} ms`);
      }
      throw new AttemptFailure("engine_unavailable", `engine request failed: ${describe(err)}`, errorCode(err) === "ECONNREFUSED");
    } finally {
      clearTimeout(timer);
      unlink?.();
    }
  }

  function delayMs(attempt: number, retryAfterMs: number | undefined): number {
    // Full jitter: a fleet of agents retrying a restarted engine does not come back in lockstep.
    const jittered = backoffDelay(attempt, { base: backoffBase, cap: backoffCap, random });
    return retryAfterMs === undefined ? jittered : Math.max(jittered, Math.min(retryAfterMs, backoffCap));
  }

  return {
    async send(req, signal) {
      const headers = { "content-type": "application/json", "x-request-id": req.requestId };
      const payload = JSON.stringify(req.body);
      let backpressure = false;
      for (let attempt = 1; ; attempt++) {
        let answer: RawAnswer | undefined;
        let failure: AttemptFailure | undefined;
        try {
          answer = await once("POST", req.url, headers, payload, signal);
        } catch (err) {
          if (!(err instanceof AttemptFailure)) throw err;
          failure = err;
        }
        const retryable = answer === undefined || answer.status === 429 || answer.status >= 500;
        if (answer?.status === 429 || answer?.status === 503) backpressure = true;
        if (answer && (!retryable || attempt >= opts.maxAttempts)) {
          const echoed = answer.headers["x-request-id"];
          return { status: answer.status, body: parseBody(answer.text), requestId: typeof echoed === "string" ? echoed : req.requestId, attempts: attempt, backpressure };
        }
        if (failure && attempt >= opts.maxAttempts) throw new EngineRequestError(failure.code, failure.message, attempt, failure.refused);
        await pause(delayMs(attempt, answer ? retryAfter(answer.headers["retry-after"]) : undefined), signal);
      }
    },

    async models(signal) {
      const answer = await once("GET", "/v1/models", { accept: "application/json" }, undefined, signal);
      if (answer.status !== 200) throw new Error(`GET /v1/models answered ${answer.status}: ${answer.text.slice(0, 200)}`);
      const body = parseBody(answer.text) as { data?: { id?: unknown }[] };
      return (body.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === "string");
    },

    async metrics(signal) {
      const answer = await once("GET", "/metrics", { accept: "text/plain" }, undefined, signal);
      if (answer.status !== 200) throw new Error(`GET /metrics answered ${answer.status}`);
      return answer.text;
    },

    async close() {
      await pool.destroy();
    },
  };
}

function parseBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Retry-After in ms, when given in seconds (the HTTP-date form is not worth parsing here). */
function retryAfter(header: string | string[] | undefined): number | undefined {
  const seconds = typeof header === "string" ? Number(header) : NaN;
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

function errorCode(err: unknown): string | undefined {
  const e = err as { code?: string; cause?: { code?: string } };
  return e?.code ?? e?.cause?.code;
}

function describe(err: unknown): string {
  const code = errorCode(err);
  const message = (err as { message?: string })?.message ?? String(err);
  return code && !message.includes(code) ? `${code} ${message}` : message;
}

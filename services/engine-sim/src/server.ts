import { closeSync, openSync, writeSync } from "node:fs";
import { type IncomingMessage, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import { type EngineSimOptions, type SimFaults, faultsSchema, resolveOptions } from "./config.js";
import {
  ApiError,
  badRequest,
  failMarkerHit,
  injectedError,
  methodNotAllowed,
  modelNotFound,
  payloadTooLarge,
  routeNotFound,
} from "./errors.js";
import { type Generation, type SimPath, generate, isSimPath } from "./generate.js";
import { type GpuCounters, GpuModel } from "./gpu.js";
import { isRecord } from "./json.js";
import { mulberry32 } from "./prng.js";

// The HTTP face of the sim: raw node:http (a framework would cost the headroom the benchmarks
// need), vLLM's routes, metrics and error shapes, plus /sim/* endpoints for tests and benches.
// Every response says it is simulated (x-barge-simulated header, system_fingerprint, owned_by).

/** One inference request as received: status null with finishedAt set means no response was sent (client gone, or a hung fault). */
export interface RequestLogEntry {
  seq: number;
  path: string;
  model: string | null;
  requestId: string | null;
  status: number | null;
  /** Unix epoch milliseconds. */
  startedAt: number;
  /** Unix epoch milliseconds; null while the request is in flight. */
  finishedAt: number | null;
}

/** GET /sim/stats: configuration, live faults and counters. */
export interface EngineSimStats {
  simulated: true;
  config: {
    models: string[];
    maxNumSeqs: number;
    prefillTokensPerSec: number;
    decodeTokensPerSec: number;
    maxModelLen: number;
    requestLog: boolean;
    logFile: string | null;
  };
  faults: SimFaults;
  counters: GpuCounters & {
    /** Inference requests received (all outcomes). */
    received: number;
    /** 4xx answers (invalid, unknown model, too long, fail marker). */
    clientErrors: number;
    /** 500s picked by errorRate. */
    injectedErrors: number;
    /** Requests picked by timeoutRate and never answered. */
    hung: number;
  };
}

/** A running simulator. */
export interface EngineSim {
  /** Base URL, e.g. http://127.0.0.1:41234 (append /v1 for an OpenAI client). */
  readonly url: string;
  readonly port: number;
  /** Stops listening, drops every connection and in-flight request. */
  close(): Promise<void>;
  stats(): EngineSimStats;
  /** Changes fault injection live; a new `seed` restarts the fault PRNG. Throws on invalid values. */
  setFaults(partial: Partial<SimFaults>): SimFaults;
  /** The in-memory request log (empty when requestLog is false). */
  requests(): readonly RequestLogEntry[];
}

/** Marks the engine in /v1/models so it is never mistaken for a real model. */
export const OWNED_BY = "barge-engine-sim (simulated)";

const MAX_BODY_BYTES = 64 * 1024 * 1024;
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
const PROMPT_FIELDS = ["messages", "prompt", "input", "instructions"] as const;
const partialFaultsSchema = faultsSchema.partial();

/** Starts a simulator listening on options.host:options.port (0 = a free port). */
export async function createEngineSim(options: EngineSimOptions = {}): Promise<EngineSim> {
  const cfg = resolveOptions(options);
  const models = new Set(cfg.models);
  const labels = `{model_name="${escapeLabel(cfg.models[0] ?? "")}"}`;
  const limits = { maxModelLen: cfg.maxModelLen };
  const gpu = new GpuModel(cfg);
  const faults: SimFaults = {
    errorRate: cfg.errorRate,
    timeoutRate: cfg.timeoutRate,
    hangMs: cfg.hangMs,
    failMarker: cfg.failMarker,
    seed: cfg.seed,
  };
  // One draw per valid inference request, in arrival order: the same seed and the same request
  // order give the same faults.
  let faultRandom = mulberry32(faults.seed);
  let escapedMarker = jsonEscape(faults.failMarker);
  const log: RequestLogEntry[] = [];
  // Appended with writeSync: each line is in the kernel once the request finishes, so it
  // survives the sim being SIGKILLed by its parent.
  let logFd: number | null = cfg.logFile === undefined ? null : openSync(cfg.logFile, "a");
  const hangTimers = new Set<NodeJS.Timeout>();
  const startedSeconds = Math.floor(Date.now() / 1000);
  let seq = 0;
  let received = 0;
  let clientErrors = 0;
  let injectedErrors = 0;
  let hung = 0;

  function finish(entry: RequestLogEntry | null, status: number | null): void {
    if (status !== null && status >= 400 && status < 500) clientErrors++;
    if (entry === null) return;
    entry.status = status;
    entry.finishedAt = Date.now();
    if (logFd !== null) writeSync(logFd, `${JSON.stringify(entry)}\n`);
  }

  function stats(): EngineSimStats {
    return {
      simulated: true,
      config: {
        models: cfg.models,
        maxNumSeqs: cfg.maxNumSeqs,
        prefillTokensPerSec: cfg.prefillTokensPerSec,
        decodeTokensPerSec: cfg.decodeTokensPerSec,
        maxModelLen: cfg.maxModelLen,
        requestLog: cfg.requestLog,
        logFile: cfg.logFile ?? null,
      },
      faults: { ...faults },
      counters: { ...gpu.counters(), received, clientErrors, injectedErrors, hung },
    };
  }

  function setFaults(partial: Partial<SimFaults>): SimFaults {
    const update = partialFaultsSchema.parse(partial);
    Object.assign(faults, update);
    if (update.seed !== undefined) faultRandom = mulberry32(update.seed);
    escapedMarker = jsonEscape(faults.failMarker);
    return { ...faults };
  }

  function inference(path: SimPath, raw: string, requestId: string | null, res: ServerResponse, startedAt: number): void {
    received++;
    let entry: RequestLogEntry | null = null;
    if (cfg.requestLog || logFd !== null) {
      entry = { seq: ++seq, path, model: null, requestId, status: null, startedAt, finishedAt: null };
      if (cfg.requestLog) log.push(entry);
    }
    const fail = (error: ApiError): void => {
      sendJson(res, error.status, JSON.stringify(error.body()), requestId);
      finish(entry, error.status);
    };

    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return fail(badRequest("Invalid JSON body"));
    }
    const model = isRecord(body) ? body.model : undefined;
    if (typeof model === "string") {
      if (entry !== null) entry.model = model;
      // vLLM checks the model before anything else about the request.
      if (!models.has(model)) return fail(modelNotFound(model));
    }
    if (escapedMarker !== "" && raw.includes(escapedMarker) && isRecord(body) && promptContains(body, escapedMarker)) {
      return fail(failMarkerHit(faults.failMarker));
    }
    let generation: Generation;
    try {
      generation = generate(path, body, limits);
    } catch (error) {
      if (error instanceof ApiError) return fail(error);
      throw error;
    }

    const draw = faultRandom();
    if (draw < faults.errorRate) {
      injectedErrors++;
      return fail(injectedError());
    }
    if (draw < faults.errorRate + faults.timeoutRate) {
      hung++;
      let hanging = true;
      const release = (): void => {
        if (!hanging) return;
        hanging = false;
        clearTimeout(timer);
        hangTimers.delete(timer);
        finish(entry, null);
      };
      // Logged before the socket goes, so the entry is final by the time the client sees the error.
      const timer = setTimeout(() => {
        release();
        res.destroy();
      }, faults.hangMs);
      hangTimers.add(timer);
      res.once("close", release);
      return;
    }

    const payload = generation.body;
    const ticket = gpu.submit(generation.promptTokens, generation.completionTokens, () => {
      sendJson(res, 200, JSON.stringify(payload), requestId);
      finish(entry, 200);
    });
    if (ticket !== undefined) {
      res.once("close", () => {
        if (res.writableEnded) return;
        ticket.cancel();
        finish(entry, null);
      });
    }
  }

  function metrics(): string {
    const c = gpu.counters();
    return [
      metric("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", "", c.running),
      metric("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", "", c.waiting),
      metric("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage (simulated: running / max_num_seqs).", "", c.running / cfg.maxNumSeqs),
      metric("vllm:prompt_tokens", "counter", "Number of prefill tokens processed.", "_total", c.promptTokensTotal),
      metric("vllm:generation_tokens", "counter", "Number of generation tokens processed.", "_total", c.generationTokensTotal),
      metric("vllm:request_success", "counter", "Count of successfully processed requests.", "_total", c.completed),
      metric("barge_sim_idle_slot_seconds", "counter", "Simulated slot-seconds left unused while the sim was active.", "_total", c.idleSlotSeconds),
      metric("barge_sim_busy_slot_seconds", "counter", "Simulated slot-seconds spent serving requests.", "_total", c.busySlotSeconds),
      metric("barge_sim_requests_aborted", "counter", "Requests whose client disconnected while waiting or running.", "_total", c.aborted),
    ].join("");
  }

  function metric(name: string, type: "gauge" | "counter", help: string, suffix: string, value: number): string {
    return `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name}${suffix}${labels} ${value}\n`;
  }

  const modelsBody = JSON.stringify({
    object: "list",
    data: cfg.models.map((id) => ({
      id,
      object: "model",
      created: startedSeconds,
      owned_by: OWNED_BY,
      root: id,
      parent: null,
      max_model_len: cfg.maxModelLen,
      permission: [],
    })),
  });

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const startedAt = Date.now();
    const url = req.url ?? "/";
    const query = url.indexOf("?");
    const path = query === -1 ? url : url.slice(0, query);
    const header = req.headers["x-request-id"];
    const requestId = typeof header === "string" ? header : null;

    if (req.method === "POST") {
      if (isSimPath(path)) return readBody(req, res, requestId, (raw) => inference(path, raw, requestId, res, startedAt));
      if (path === "/sim/faults") {
        return readBody(req, res, requestId, (raw) => {
          try {
            sendJson(res, 200, JSON.stringify(setFaults(JSON.parse(raw) as Partial<SimFaults>)), requestId);
          } catch (error) {
            const message = error instanceof z.ZodError ? z.prettifyError(error) : "Invalid JSON body";
            sendJson(res, 400, JSON.stringify(badRequest(message).body()), requestId);
          }
        });
      }
    } else if (req.method === "GET") {
      switch (path) {
        case "/v1/models":
          return sendJson(res, 200, modelsBody, requestId);
        case "/health":
          return send(res, 200, "", "text/plain; charset=utf-8", requestId);
        case "/metrics":
          return send(res, 200, metrics(), "text/plain; version=0.0.4; charset=utf-8", requestId);
        case "/sim/stats":
          return sendJson(res, 200, JSON.stringify(stats()), requestId);
        case "/sim/requests":
          return sendJson(res, 200, JSON.stringify(log), requestId);
      }
    }
    const known = isSimPath(path) || path === "/sim/faults" || GET_PATHS.has(path);
    const error = known ? methodNotAllowed(req.method ?? "", path) : routeNotFound(path);
    // The body is drained so a keep-alive connection stays usable after the error.
    req.resume();
    sendJson(res, error.status, JSON.stringify(error.body()), requestId);
  }

  const server = createServer(handle);
  // Above typical client pools' idle timeouts, so the server never closes a socket a client is
  // about to reuse; headersTimeout must exceed keepAliveTimeout.
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1_000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(cfg.port, cfg.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | null = null;

  return {
    url: `http://${urlHost(cfg.host)}:${port}`,
    port,
    stats,
    setFaults,
    requests: () => log,
    close() {
      closing ??= new Promise<void>((resolve) => {
        gpu.shutdown();
        for (const timer of hangTimers) clearTimeout(timer);
        hangTimers.clear();
        server.close(() => {
          if (logFd !== null) closeSync(logFd);
          logFd = null;
          resolve();
        });
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

const GET_PATHS: ReadonlySet<string> = new Set(["/v1/models", "/health", "/metrics", "/sim/stats", "/sim/requests"]);

function readBody(req: IncomingMessage, res: ServerResponse, requestId: string | null, onBody: (raw: string) => void): void {
  const chunks: Buffer[] = [];
  let bytes = 0;
  req.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes <= MAX_BODY_BYTES) chunks.push(chunk);
  });
  req.on("end", () => {
    if (bytes > MAX_BODY_BYTES) {
      const error = payloadTooLarge(MAX_BODY_BYTES);
      sendJson(res, error.status, JSON.stringify(error.body()), requestId);
    } else {
      onBody(chunks.length === 1 ? (chunks[0] as Buffer).toString("utf8") : Buffer.concat(chunks).toString("utf8"));
    }
  });
  // A client that disconnects mid-upload makes the request emit "error"; there is nobody left
  // to answer, and without a listener it would crash the process.
  req.on("error", () => {});
}

function sendJson(res: ServerResponse, status: number, payload: string, requestId: string | null): void {
  send(res, status, payload, "application/json", requestId);
}

function send(res: ServerResponse, status: number, payload: string, contentType: string, requestId: string | null): void {
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

function promptContains(body: Record<string, unknown>, escapedMarker: string): boolean {
  for (const field of PROMPT_FIELDS) {
    const value = body[field];
    if (value !== undefined && JSON.stringify(value).includes(escapedMarker)) return true;
  }
  return false;
}

function jsonEscape(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function urlHost(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}

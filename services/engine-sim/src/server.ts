import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type EngineSimOptions, type ResolvedSimOptions, type SimFaults, resolveOptions } from "./config.js";
import { FaultInjector } from "./faults.js";
import { GpuModel } from "./gpu.js";
import { urlHost } from "./http.js";
import { InferenceHandler } from "./inference.js";
import { modelLabels, renderMetrics } from "./metrics.js";
import { RequestLog, type RequestLogEntry } from "./request-log.js";
import { createRouter } from "./routes.js";
import { type EngineSimStats, simStats } from "./stats.js";

// The HTTP face of the sim: raw node:http (a framework would cost the headroom the benchmarks
// need), vLLM's routes, metrics and error shapes, plus /sim/* endpoints for tests and benches.
// Every response says it is simulated (x-barge-simulated header, system_fingerprint, owned_by).

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

const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/** Starts a simulator listening on options.host:options.port (0 = a free port). */
export async function createEngineSim(options: EngineSimOptions = {}): Promise<EngineSim> {
  const cfg = resolveOptions(options);
  const labels = modelLabels(cfg.models[0] ?? "");
  const gpu = new GpuModel(cfg);
  const faults = new FaultInjector({
    errorRate: cfg.errorRate,
    timeoutRate: cfg.timeoutRate,
    hangMs: cfg.hangMs,
    failMarker: cfg.failMarker,
    seed: cfg.seed,
  });
  const log = new RequestLog(cfg.requestLog, cfg.logFile);
  const inference = new InferenceHandler({ models: new Set(cfg.models), limits: { maxModelLen: cfg.maxModelLen }, gpu, faults, log });
  const stats = (): EngineSimStats => simStats(cfg, faults.current(), gpu.counters(), inference.counters());
  const setFaults = (partial: Partial<SimFaults>): SimFaults => faults.set(partial);
  const requests = (): readonly RequestLogEntry[] => log.entries();

  const server = createServer(
    createRouter({
      inference,
      modelsBody: modelsBody(cfg, Math.floor(Date.now() / 1000)),
      metrics: () => renderMetrics(gpu.counters(), cfg.maxNumSeqs, labels),
      stats,
      setFaults,
      requests,
    }),
  );
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
    requests,
    close() {
      closing ??= new Promise<void>((resolve) => {
        gpu.shutdown();
        inference.clearHangs();
        server.close(() => {
          log.close();
          resolve();
        });
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** The GET /v1/models body: every served name, stamped with the sim's start time. */
function modelsBody(cfg: ResolvedSimOptions, createdSeconds: number): string {
  return JSON.stringify({
    object: "list",
    data: cfg.models.map((id) => ({
      id,
      object: "model",
      created: createdSeconds,
      owned_by: OWNED_BY,
      root: id,
      parent: null,
      max_model_len: cfg.maxModelLen,
      permission: [],
    })),
  });
}

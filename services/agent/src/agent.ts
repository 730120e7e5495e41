import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { gpuLimits, startTicker, type AgentConfig, type Bucket, type Db, type Logger, type Loop } from "@barge/core";
import { AgentMetrics } from "./agent-metrics.js";
import { ChunkRuns } from "./chunk-runs.js";
import { runClaimLoop } from "./claim-loop.js";
import { ConcurrencyController, concurrencyBounds, startLoadPoller } from "./engine/concurrency.js";
import type { EngineProcess } from "./engine/engine-process.js";
import { createEngineClient, type HttpEngineClient } from "./engine/engine-client.js";
import { EngineModels } from "./engine/models.js";
import type { FinalizerDeps } from "./finalize/finalizer.js";
import { GpuGuard } from "./gpu/gpu-guard.js";
import { GpuWatch } from "./gpu/gpu-watch.js";
import { startMetricsServer, type MetricsServer } from "./metrics-server.js";
import { RequestSlots } from "./engine/request-slots.js";
import { startRescuer } from "./maintenance/rescuer.js";

export interface AgentDeps extends Bucket {
  db: Db;
  /** The agent's view of the settings. */
  config: AgentConfig;
  log: Logger;
  /** Base URL of the engine beside this agent (VLLM_URL). */
  engineUrl: string;
  /** Defaults to AGENT_ID, else hostname-pid-random. */
  agentId?: string;
  /** The engine this agent starts itself (ENGINE_COMMAND), serving at engineUrl; it picks and swaps the model. */
  engineProcess?: EngineProcess;
  /**
   * What `start()` waits for before it touches Postgres (the process's start-up checks and
   * migrations); `onWaiting` gets the reason /readyz shows meanwhile. False: stopped while waiting.
   */
  preflight?: (o: { signal: AbortSignal; onWaiting: (reason: string) => void }) => Promise<boolean>;
}

/** A GPU node agent: claims chunks its engine can serve, runs them, and finalizes batches. */
export interface Agent {
  readonly id: string;
  /** Waits for the engine to list its models, registers, and starts the claim loop. */
  start(): Promise<void>;
  /**
   * graceful: stop claiming, let the in-flight requests of every chunk run finish for up to
   * AGENT_SHUTDOWN_GRACE_MS (then abort them), commit everything finished in order and release
   * the chunks so another agent continues at once. Not graceful: drop everything now, as a crash
   * would, and leave the lease to lapse. Resolves once the agent has stopped.
   */
  stop(opts: { graceful: boolean }): Promise<void>;
  /** Resolves when the agent has stopped, however that came about. */
  readonly running: Promise<void>;
}

/** Creates an agent; nothing runs until `start()`. */
export function createAgent(deps: AgentDeps): Agent {
  const { config } = deps;
  const id = deps.agentId ?? config.AGENT_ID ?? `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const log = deps.log.child({ agent: id });
  const stopCtl = new AbortController();
  const finalizer: FinalizerDeps = {
    db: deps.db,
    s3: deps.s3,
    bucket: deps.bucket,
    log,
    leaseSeconds: config.LEASE_SECONDS,
    segmentMaxLines: config.SEGMENT_MAX_LINES,
    maxAttempts: config.FINALIZE_MAX_ATTEMPTS,
  };
  // One controller for the agent's lifetime: what it learned about the engine outlives any one chunk.
  const concurrency = new ConcurrencyController(concurrencyBounds(config));
  // One in-flight bound across the agent's runs: overlapping chunks share the engine, not double it.
  const slots = new RequestSlots(concurrency, config.AGENT_CONCURRENCY);
  const metrics: AgentMetrics = new AgentMetrics(
    {
      concurrencyLimit: () => slots.limit,
      inflight: () => slots.inflight,
      activeRuns: (): number => runs.count,
      gpus: () => gpus.gpus,
      claimsPausedReason: () => gpus.pausedReason,
    },
    { gpuMaxTempC: config.GPU_MAX_TEMP_C },
  );
  const runs: ChunkRuns = new ChunkRuns({ db: deps.db, s3: deps.s3, bucket: deps.bucket, log, config, concurrency, slots, metrics });
  // Read on every heartbeat; a read takes at most half a lease, so the beat stays within one.
  const gpus: GpuWatch = new GpuWatch({ guard: new GpuGuard(gpuLimits(config)), log, timeoutMs: Math.min(5000, config.LEASE_SECONDS * 500) });
  let engine: HttpEngineClient | undefined;
  let started = false;
  let stopping: Promise<void> | undefined;
  let loop: Promise<void> | undefined;
  let background: Loop[] = [];
  let metricsServer: MetricsServer | undefined;
  let markStopped!: () => void;
  const running = new Promise<void>((resolve) => (markStopped = resolve));

  async function shutdown(graceful: boolean): Promise<void> {
    stopCtl.abort();
    runs.stop(graceful ? "drain" : "abandon");
    // Past the grace, in-flight requests are aborted; what finished is still committed.
    const grace = graceful
      ? setTimeout(() => {
          log.warn({ graceMs: config.AGENT_SHUTDOWN_GRACE_MS }, "shutdown grace over: aborting in-flight requests");
          runs.release();
        }, config.AGENT_SHUTDOWN_GRACE_MS)
      : undefined;
    runs.wake();
    await loop;
    clearTimeout(grace);
    // Not awaited, as before: a housekeeping step in flight may finish on its own.
    for (const task of background) void task.stop();
    background = [];
    await engine?.close();
    await metricsServer?.close();
    await deps.engineProcess?.stop();
    log.info({ graceful }, "agent stopped");
    markStopped();
  }

  /** Registers the agent once the engine answers, then starts the load poller, the heartbeat and the claim loop. */
  async function start(): Promise<void> {
    engine = createEngineClient({
      baseUrl: deps.engineUrl,
      connections: concurrency.bounds.max,
      timeoutMs: config.ENGINE_TIMEOUT_MS,
      maxAttempts: config.ENGINE_MAX_ATTEMPTS,
    });
    const client = engine;
    const models = new EngineModels({
      db: deps.db,
      log,
      config,
      engine: client,
      engineUrl: deps.engineUrl,
      engineProcess: deps.engineProcess,
      agentId: id,
      hostname: hostname(),
      signal: stopCtl.signal,
      heartbeat: () => ({
        gpus: gpus.gpus,
        kvCacheUsage: metrics.engineLoad?.kvCacheUsage ?? null,
        inFlight: slots.inflight,
        concurrencyLimit: slots.limit,
        claimsPausedReason: gpus.pausedReason,
      }),
    });
    // Up before Postgres and the engine are waited for, so /readyz can say why the agent does not claim yet.
    let registered = false;
    let waitingFor: string | undefined;
    if (config.AGENT_METRICS_PORT > 0) {
      metricsServer = await startMetricsServer({
        host: config.AGENT_METRICS_HOST,
        port: config.AGENT_METRICS_PORT,
        contentType: metrics.contentType,
        render: () => metrics.render(),
        unready: () =>
          stopCtl.signal.aborted
            ? "stopping"
            : registered
              ? undefined
              : (waitingFor ?? models.waiting ?? (deps.engineProcess && !deps.engineProcess.model ? "waiting for work to pick the engine's model" : "starting")),
      });
      log.info({ host: config.AGENT_METRICS_HOST, port: metricsServer.port }, "agent metrics at GET /metrics, probes at /livez and /readyz");
    }
    // A stop that came meanwhile has already run its shutdown, which found no server yet.
    if (stopCtl.signal.aborted) {
      await metricsServer?.close();
      return;
    }
    if (deps.preflight) {
      const ready = await deps.preflight({ signal: stopCtl.signal, onWaiting: (reason) => (waitingFor = reason) });
      waitingFor = undefined;
      if (!ready || stopCtl.signal.aborted) return;
    }
    // Housekeeping needs no engine: an agent whose engine is still loading (or never answers)
    // still requeues other agents' lapsed chunks and expires overdue batches.
    background = [
      startRescuer({ db: deps.db, s3: deps.s3, bucket: deps.bucket, log, intervalMs: config.LEASE_SECONDS * 500, onRescued: (n) => metrics.countRescued(n) }),
    ];
    if (deps.engineProcess) await models.loadFirstModel(deps.engineProcess);
    models.list = await models.waitForModels();
    if (stopCtl.signal.aborted) return;
    // A GPU already hot at start-up gates the very first claim.
    await gpus.sample();
    await models.register();
    // A stop that came while registering has already run its shutdown: start nothing more.
    if (stopCtl.signal.aborted) return;
    registered = true;
    log.info({ models: models.list, engine: deps.engineUrl }, "agent registered");
    background.push(
      startLoadPoller({
        controller: concurrency,
        fetchMetrics: (signal) => client.metrics(signal),
        log,
        intervalMs: config.AGENT_METRICS_POLL_MS,
        onLoad: (load) => metrics.observeEngineLoad(load),
      }),
    );
    // One heartbeat: read the GPUs (which may pause or resume claims), then record it all with the models.
    const beat = async () => {
      const wasPaused = gpus.pausedReason !== null;
      await gpus.sample();
      // Resumed: the claim loop polls anyway, but need not wait for its next poll.
      if (wasPaused && gpus.pausedReason === null) runs.wake();
      await models.refresh();
    };
    // The presence heartbeat: registering just marked the agent alive, so the first beat is a lease period away.
    background.push(
      startTicker("heartbeat", log, config.LEASE_SECONDS * 1000, () => beat().catch((err: unknown) => log.warn({ err }, "agent heartbeat failed")), {
        delayFirst: true,
      }),
    );
    loop = runClaimLoop({ db: deps.db, log, config, agentId: id, engine: client, models, runs, finalizer, signal: stopCtl.signal, claimsPaused: () => gpus.pausedReason });
  }

  return {
    id,
    running,
    async start() {
      if (started) return;
      started = true;
      await start();
    },
    stop({ graceful }) {
      // A hard stop after a graceful one escalates: the chunk still flushing is dropped.
      if (stopping && !graceful) runs.stop("abandon");
      stopping ??= shutdown(graceful);
      return stopping;
    },
  };
}

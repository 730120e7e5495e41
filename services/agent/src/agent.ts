import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { backoffDelay, type Bucket, type ChunkRow, claimChunk, type Config, type Db, LeaseLost, type Logger, waitingModels } from "@barge/core";
import { AgentMetrics } from "./agent-metrics.js";
import { startChunk, type ChunkRun } from "./run/chunk-runner.js";
import { ConcurrencyController, concurrencyBounds, startLoadPoller } from "./engine/concurrency.js";
import type { EngineProcess } from "./engine/engine-process.js";
import { createEngineClient, type EngineClient, type HttpEngineClient } from "./engine/engine-client.js";
import { finalizeNext, type FinalizerDeps } from "./finalize/finalizer.js";
import { startMetricsServer, type MetricsServer } from "./metrics-server.js";
import { poisonEngine } from "./engine/poison-engine.js";
import { RequestSlots } from "./engine/request-slots.js";
import { startRescuer, type Periodic } from "./maintenance/rescuer.js";

/** Chunk runs an agent holds at once: the one finishing and the one already feeding the engine behind it. */
const MAX_CHUNK_RUNS = 2;

interface ActiveRun {
  run: ChunkRun;
  /** Its last requests are being dispatched: time for the next chunk to start. */
  atTail: boolean;
}

export interface AgentDeps extends Bucket {
  db: Db;
  config: Config;
  log: Logger;
  /** Base URL of the engine beside this agent (VLLM_URL). */
  engineUrl: string;
  /** Defaults to AGENT_ID, else hostname-pid-random. */
  agentId?: string;
  /** The engine this agent starts itself (ENGINE_COMMAND), serving at engineUrl; it picks and swaps the model. */
  engineProcess?: EngineProcess;
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
  const host = hostname();
  const stopCtl = new AbortController();
  const finalizerDeps: FinalizerDeps = {
    db: deps.db,
    s3: deps.s3,
    bucket: deps.bucket,
    log,
    leaseSeconds: config.LEASE_SECONDS,
    segmentMaxLines: config.SEGMENT_MAX_LINES,
  };
  // One controller for the agent's lifetime: what it learned about the engine outlives any one chunk.
  const concurrency = new ConcurrencyController(concurrencyBounds(config));
  // One in-flight bound across the agent's runs: overlapping chunks share the engine, not double it.
  const slots = new RequestSlots(concurrency, config.AGENT_CONCURRENCY);
  // Batches a chunk run just made ready to stitch: finalized before anything else is claimed.
  const woken = new Set<string>();
  // Oldest first; at most MAX_CHUNK_RUNS.
  const runs: ActiveRun[] = [];
  const metrics = new AgentMetrics({ concurrencyLimit: () => slots.limit, inflight: () => slots.inflight, activeRuns: () => runs.length });
  // The claim loop is woken when a run reaches its tail or ends, or the agent stops. `events`
  // counts them, so one that fired while the loop was busy is not slept through.
  let wakeLoop: (() => void) | undefined;
  let events = 0;
  // A run whose outcome was engine_down: claim nothing until the engine lists its models again.
  let engineDown = false;
  // After a failed run, its chunk (released) would be re-claimed at once: idle a poll interval first.
  let claimNotBefore = 0;
  let engine: HttpEngineClient | undefined;
  let models: string[] = [];
  let started = false;
  let stopping: Promise<void> | undefined;
  let stopMode: "drain" | "release" | "abandon" | undefined;
  let loop: Promise<void> | undefined;
  let background: Periodic[] = [];
  let metricsServer: MetricsServer | undefined;
  let markStopped!: () => void;
  const running = new Promise<void>((resolve) => (markStopped = resolve));

  const wake = () => {
    events++;
    wakeLoop?.();
    wakeLoop = undefined;
  };

  async function register(): Promise<void> {
    const row = { models: JSON.stringify(models), hostname: host, last_seen_at: new Date() };
    await deps.db
      .insertInto("agents")
      .values({ id, ...row })
      .onConflict((oc) => oc.column("id").doUpdateSet(row))
      .execute();
  }

  async function waitForModels(client: EngineClient): Promise<string[]> {
    for (let attempt = 0; !stopCtl.signal.aborted; attempt++) {
      try {
        const served = await client.models(stopCtl.signal);
        if (served.length > 0) return served;
        log.warn("the engine serves no models yet");
      } catch (err) {
        if (stopCtl.signal.aborted) break;
        if (attempt % 10 === 0) log.warn({ err, url: deps.engineUrl }, "engine not reachable yet; retrying");
      }
      await sleep(backoffDelay(attempt + 1, { base: 250, cap: 2000 }), undefined, { signal: stopCtl.signal }).catch(() => undefined);
    }
    return [];
  }

  /** Re-reads the served models (an engine may restart with another) and marks the agent alive. */
  async function refresh(client: EngineClient): Promise<void> {
    try {
      const served = await client.models(stopCtl.signal);
      if (served.length > 0) models = served;
    } catch (err) {
      log.debug({ err }, "model refresh failed; keeping the last list");
    }
    await register();
  }

  /** Starts the ENGINE_COMMAND engine on the model waited for longest (or ENGINE_MODEL); waits while nothing waits. */
  async function loadFirstModel(proc: EngineProcess): Promise<void> {
    while (!stopCtl.signal.aborted) {
      const model = (await waitingModels(deps.db))[0]?.model ?? config.ENGINE_MODEL;
      if (model !== undefined) {
        await proc.start(model);
        // A stop that came meanwhile already stopped the engine it found: stop this one too.
        if (stopCtl.signal.aborted) await proc.stop();
        return;
      }
      await sleep(config.AGENT_POLL_MS, undefined, { signal: stopCtl.signal }).catch(() => undefined);
    }
  }

  /**
   * Called when nothing could be claimed: the loaded model has no queued work. Swapping costs a
   * model load, so it only happens for work that has waited ENGINE_SWAP_AFTER_SECONDS; until then
   * an agent already serving that model may take it.
   */
  async function maybeSwap(proc: EngineProcess, client: EngineClient): Promise<boolean> {
    const due = Date.now() - config.ENGINE_SWAP_AFTER_SECONDS * 1000;
    const next = (await waitingModels(deps.db)).find((w) => w.model !== proc.model && w.oldest.getTime() <= due);
    if (!next) return false;
    log.info({ from: proc.model, to: next.model, waitingSince: next.oldest }, "no work for the loaded model: swapping the engine");
    // Nothing claimed means nothing in flight: the engine is already drained.
    models = [];
    await proc.start(next.model);
    const served = await waitForModels(client);
    if (served.length > 0) models = served;
    await register();
    return true;
  }

  async function finalizeOne(batchId?: string): Promise<boolean> {
    try {
      return (await finalizeNext(finalizerDeps, id, batchId)) !== undefined;
    } catch (err) {
      if (err instanceof LeaseLost) log.info({ err: err.message, batch: batchId }, "finalize taken over by another worker");
      else log.error({ err, batch: batchId }, "finalize failed; it is retried once the batch lease lapses");
      return false;
    }
  }

  /** Starts running a claimed chunk beside the runs already going; the loop learns of its tail and end through `wake`. */
  function startRun(client: EngineClient, chunk: ChunkRow): void {
    metrics.chunksClaimed++;
    const poisoned = chunk.failures >= config.CHUNK_MAX_ATTEMPTS;
    log.info({ batch: chunk.batch_id, chunk: chunk.idx, fence: chunk.fence, committed: chunk.committed, failures: chunk.failures, runs: runs.length + 1, concurrency: slots.limit }, "claimed chunk");
    if (poisoned) log.warn({ batch: chunk.batch_id, chunk: chunk.idx, failures: chunk.failures }, "poison chunk: failing its remaining requests as chunk_failed");
    const run = startChunk(
      {
        db: deps.db,
        s3: deps.s3,
        bucket: deps.bucket,
        engine: poisoned ? poisonEngine(client, chunk.failures) : client,
        // A poisoned run's instant failures say nothing about the engine's capacity.
        ...(poisoned ? {} : { concurrency }),
        slots,
        log,
        config,
        onFinalizable: (batchId) => woken.add(batchId),
        onResult: (kind) => metrics.countResult(kind),
      },
      chunk,
    );
    const active: ActiveRun = { run, atTail: false };
    runs.push(active);
    // A stop that arrived while the claim was in flight found no run to stop.
    if (stopMode) run.stop(stopMode);
    void run.tail.then(() => {
      active.atTail = true;
      wake();
    });
    void run.done
      .then(
        (outcome) => {
          if (outcome === "completed") metrics.chunksCompleted++;
          if (outcome === "engine_down") engineDown = true;
        },
        (err: unknown) => {
          log.error({ err, batch: chunk.batch_id, chunk: chunk.idx }, "chunk run failed");
          claimNotBefore = Date.now() + config.AGENT_POLL_MS;
        },
      )
      .finally(() => {
        runs.splice(runs.indexOf(active), 1);
        wake();
      });
  }

  /** Whether another run may start: none is going, or the only one is dispatching its last requests. */
  const wantsRun = () => !engineDown && (runs.length === 0 || (runs.length < MAX_CHUNK_RUNS && runs.every((r) => r.atTail)));

  async function claimLoop(client: EngineClient): Promise<void> {
    while (!stopCtl.signal.aborted) {
      const seen = events;
      let worked = false;
      try {
        for (const batchId of [...woken]) {
          woken.delete(batchId);
          if (await finalizeOne(batchId)) worked = true;
        }
        if (await finalizeOne()) worked = true;
        if (stopCtl.signal.aborted) break;
        if (engineDown && runs.length === 0) {
          // A supervised engine that died is being restarted by its supervisor; this waits for it.
          const served = await waitForModels(client);
          if (served.length > 0) {
            models = served;
            log.info({ models }, "engine answers again; claiming");
          }
          engineDown = false;
          worked = true;
        } else if (wantsRun() && Date.now() >= claimNotBefore) {
          const chunk = await claimChunk(deps.db, { agentId: id, models, leaseSeconds: config.LEASE_SECONDS });
          if (chunk) {
            startRun(client, chunk);
            worked = true;
          } else if (runs.length === 0 && deps.engineProcess && !stopCtl.signal.aborted && (await maybeSwap(deps.engineProcess, client))) {
            worked = true;
          }
        }
      } catch (err) {
        log.error({ err }, "claim loop step failed");
      }
      if (worked || woken.size > 0 || stopCtl.signal.aborted || events !== seen) continue;
      // Polling for new work needs a timer; a loop waiting on its runs is woken by them.
      await new Promise<void>((resolve) => {
        const timer = wantsRun() ? setTimeout(resolve, Math.max(config.AGENT_POLL_MS, claimNotBefore - Date.now())) : undefined;
        wakeLoop = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wakeLoop = undefined;
    }
    // Stopping: every run was told how to stop; wait until each has committed, released or dropped its chunk.
    while (runs.length > 0) await Promise.allSettled(runs.map((r) => r.run.done));
  }

  async function shutdown(graceful: boolean): Promise<void> {
    stopMode = graceful ? "drain" : "abandon";
    stopCtl.abort();
    for (const r of runs) r.run.stop(stopMode);
    // Past the grace, in-flight requests are aborted; what finished is still committed.
    const grace = graceful
      ? setTimeout(() => {
          log.warn({ graceMs: config.AGENT_SHUTDOWN_GRACE_MS }, "shutdown grace over: aborting in-flight requests");
          if (stopMode === "drain") stopMode = "release";
          for (const r of runs) r.run.stop("release");
        }, config.AGENT_SHUTDOWN_GRACE_MS)
      : undefined;
    wake();
    await loop;
    clearTimeout(grace);
    for (const task of background) task.stop();
    background = [];
    await engine?.close();
    await metricsServer?.close();
    await deps.engineProcess?.stop();
    log.info({ graceful }, "agent stopped");
    markStopped();
  }

  return {
    id,
    running,
    async start() {
      if (started) return;
      started = true;
      engine = createEngineClient({
        baseUrl: deps.engineUrl,
        connections: concurrency.bounds.max,
        timeoutMs: config.ENGINE_TIMEOUT_MS,
        maxAttempts: config.ENGINE_MAX_ATTEMPTS,
      });
      const client = engine;
      // Housekeeping needs no engine: an agent whose engine is still loading (or never answers)
      // still requeues other agents' lapsed chunks and expires overdue batches.
      background = [startRescuer({ db: deps.db, s3: deps.s3, bucket: deps.bucket, log, intervalMs: config.LEASE_SECONDS * 500 })];
      if (deps.engineProcess) await loadFirstModel(deps.engineProcess);
      models = await waitForModels(client);
      if (stopCtl.signal.aborted) return;
      await register();
      if (config.AGENT_METRICS_PORT > 0 && !stopCtl.signal.aborted) {
        metricsServer = await startMetricsServer({ host: config.AGENT_METRICS_HOST, port: config.AGENT_METRICS_PORT, render: () => metrics.render() });
        log.info({ host: config.AGENT_METRICS_HOST, port: metricsServer.port }, "agent metrics at GET /metrics");
      }
      // A stop that came while registering has already run its shutdown: start nothing more.
      if (stopCtl.signal.aborted) {
        await metricsServer?.close();
        return;
      }
      log.info({ models, engine: deps.engineUrl }, "agent registered");
      background.push(
        startLoadPoller({
          controller: concurrency,
          fetchMetrics: (signal) => client.metrics(signal),
          log,
          intervalMs: config.AGENT_METRICS_POLL_MS,
          onLoad: (load) => (metrics.engineLoad = load),
        }),
      );
      const presence = setInterval(() => {
        refresh(client).catch((err: unknown) => log.warn({ err }, "agent heartbeat failed"));
      }, config.LEASE_SECONDS * 1000);
      background.push({ stop: () => clearInterval(presence) });
      loop = claimLoop(client);
    },
    stop({ graceful }) {
      // A hard stop after a graceful one escalates: the chunk still flushing is dropped.
      if (stopping && !graceful) {
        stopMode = "abandon";
        for (const r of runs) r.run.stop("abandon");
      }
      stopping ??= shutdown(graceful);
      return stopping;
    },
  };
}

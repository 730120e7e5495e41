import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { claimChunk, LeaseLost, waitingModels, type Bucket, type Config, type Db, type Logger } from "@barge/core";
import { startChunk, type ChunkRun } from "./chunk-runner.js";
import { ConcurrencyController, concurrencyBounds, startLoadPoller } from "./concurrency.js";
import type { EngineProcess } from "./engine-process.js";
import { createEngineClient, type EngineClient, type HttpEngineClient } from "./engine-client.js";
import { finalizeNext, type FinalizerDeps } from "./finalizer.js";
import { poisonEngine } from "./poison-engine.js";
import { startRescuer, type Periodic } from "./rescuer.js";

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
   * graceful: stop claiming, let the current chunk's in-flight requests finish for up to
   * AGENT_SHUTDOWN_GRACE_MS (then abort them), commit everything finished in order and release
   * the chunk so another agent continues at once. Not graceful: drop everything now, as a crash
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
  // Batches a chunk run just made ready to stitch: finalized before anything else is claimed.
  const woken = new Set<string>();
  let engine: HttpEngineClient | undefined;
  let models: string[] = [];
  let current: ChunkRun | undefined;
  let wakeIdle: (() => void) | undefined;
  let started = false;
  let stopping: Promise<void> | undefined;
  let stopMode: "drain" | "release" | "abandon" | undefined;
  let loop: Promise<void> | undefined;
  let background: Periodic[] = [];
  let markStopped!: () => void;
  const running = new Promise<void>((resolve) => (markStopped = resolve));

  const wake = () => {
    wakeIdle?.();
    wakeIdle = undefined;
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
      await sleep(Math.min(250 * 2 ** attempt, 2000), undefined, { signal: stopCtl.signal }).catch(() => undefined);
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

  async function claimLoop(client: EngineClient): Promise<void> {
    while (!stopCtl.signal.aborted) {
      let worked = false;
      try {
        for (const batchId of [...woken]) {
          woken.delete(batchId);
          if (await finalizeOne(batchId)) worked = true;
        }
        if (await finalizeOne()) worked = true;
        if (stopCtl.signal.aborted) break;
        const chunk = await claimChunk(deps.db, { agentId: id, models, leaseSeconds: config.LEASE_SECONDS });
        if (chunk) {
          const poisoned = chunk.failures >= config.CHUNK_MAX_ATTEMPTS;
          log.info({ batch: chunk.batch_id, chunk: chunk.idx, fence: chunk.fence, committed: chunk.committed, failures: chunk.failures }, "claimed chunk");
          if (poisoned) log.warn({ batch: chunk.batch_id, chunk: chunk.idx, failures: chunk.failures }, "poison chunk: failing its remaining requests as chunk_failed");
          current = startChunk(
            {
              db: deps.db,
              s3: deps.s3,
              bucket: deps.bucket,
              engine: poisoned ? poisonEngine(client, chunk.failures) : client,
              // A poisoned run's instant failures say nothing about the engine's capacity.
              ...(poisoned ? {} : { concurrency }),
              log,
              config,
              onFinalizable: (batchId) => woken.add(batchId),
            },
            chunk,
          );
          // A stop that arrived while the claim was in flight found no run to stop.
          if (stopMode) current.stop(stopMode);
          // A failed run released its chunk, which this agent would re-claim at once: idling a
          // poll interval first keeps a persistent failure from spinning.
          const outcome = await current.done.catch((err: unknown) => {
            log.error({ err, batch: chunk.batch_id, chunk: chunk.idx }, "chunk run failed");
            return undefined;
          });
          current = undefined;
          if (outcome !== undefined) worked = true;
          // The engine went away: claim nothing more until it lists its models again.
          if (outcome === "engine_down") {
            // A supervised engine that died is being restarted by its supervisor; this waits for it.
            const served = await waitForModels(client);
            if (served.length > 0) {
              models = served;
              log.info({ models }, "engine answers again; claiming");
            }
          }
        } else if (deps.engineProcess && !stopCtl.signal.aborted && (await maybeSwap(deps.engineProcess, client))) {
          worked = true;
        }
      } catch (err) {
        log.error({ err }, "claim loop step failed");
      }
      if (!worked && woken.size === 0 && !stopCtl.signal.aborted) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, config.AGENT_POLL_MS);
          wakeIdle = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wakeIdle = undefined;
      }
    }
  }

  async function shutdown(graceful: boolean): Promise<void> {
    stopMode = graceful ? "drain" : "abandon";
    stopCtl.abort();
    current?.stop(stopMode);
    // Past the grace, in-flight requests are aborted; what finished is still committed.
    const grace = graceful
      ? setTimeout(() => {
          log.warn({ graceMs: config.AGENT_SHUTDOWN_GRACE_MS }, "shutdown grace over: aborting in-flight requests");
          if (stopMode === "drain") stopMode = "release";
          current?.stop("release");
        }, config.AGENT_SHUTDOWN_GRACE_MS)
      : undefined;
    wake();
    await loop;
    clearTimeout(grace);
    for (const task of background) task.stop();
    background = [];
    await engine?.close();
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
      if (deps.engineProcess) await loadFirstModel(deps.engineProcess);
      models = await waitForModels(client);
      if (stopCtl.signal.aborted) return;
      await register();
      // A stop that came while registering has already run its shutdown: start nothing more.
      if (stopCtl.signal.aborted) return;
      log.info({ models, engine: deps.engineUrl }, "agent registered");
      background = [
        startRescuer({ db: deps.db, s3: deps.s3, bucket: deps.bucket, log, intervalMs: config.LEASE_SECONDS * 500 }),
        startLoadPoller({ controller: concurrency, fetchMetrics: (signal) => client.metrics(signal), log, intervalMs: config.AGENT_METRICS_POLL_MS }),
      ];
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
        current?.stop("abandon");
      }
      stopping ??= shutdown(graceful);
      return stopping;
    },
  };
}

import { agentMaxConcurrency, startTicker, type Config, type Logger, type Loop } from "@barge/core";

// How many requests the agent keeps in flight. A fixed number is wrong on both sides: too few
// leaves GPU slots idle between completions, too many only lengthens the engine's queue (and the
// latency of every request in it). The right number is "every slot busy, plus a short queue so a
// finishing sequence is replaced at once", which the engine's own gauges say directly. Engines
// without them get AIMD on latency instead, the way TCP finds a link's capacity.

/** The engine's scheduler gauges, summed over label sets (one per model). */
export interface EngineLoad {
  running: number;
  waiting: number;
  /** 0..1; informational, the limit follows running and waiting. */
  kvCacheUsage: number;
}

/** How one finished request went, as the AIMD fallback sees it. */
export interface RequestSample {
  latencyMs: number;
  /** `backpressure`: the engine answered 429/503 at least once, i.e. it is full, not broken. */
  outcome: "ok" | "backpressure" | "error";
}

export interface ConcurrencyBounds {
  /** The starting limit (AGENT_CONCURRENCY). */
  initial: number;
  min: number;
  max: number;
}

/** The controller's bounds from the agent's settings. */
export function concurrencyBounds(config: Pick<Config, "AGENT_CONCURRENCY" | "AGENT_MIN_CONCURRENCY" | "AGENT_MAX_CONCURRENCY">): ConcurrencyBounds {
  return { initial: config.AGENT_CONCURRENCY, min: config.AGENT_MIN_CONCURRENCY, max: agentMaxConcurrency(config) };
}

/** Parses Prometheus text into the vLLM scheduler gauges; undefined when running or waiting is missing. */
export function parseEngineLoad(text: string): EngineLoad | undefined {
  const sums = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    // `name{labels} value [timestamp]`; label values may hold spaces, so the name ends at `{` or the first space.
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const [, name, , raw] = match;
    const value = Number(raw);
    if (name === undefined || !Number.isFinite(value)) continue;
    sums.set(name, (sums.get(name) ?? 0) + value);
  }
  const running = sums.get("vllm:num_requests_running");
  const waiting = sums.get("vllm:num_requests_waiting");
  if (running === undefined || waiting === undefined) return undefined;
  // Older vLLM releases called the KV gauge gpu_cache_usage_perc.
  const kvCacheUsage = sums.get("vllm:kv_cache_usage_perc") ?? sums.get("vllm:gpu_cache_usage_perc") ?? 0;
  return { running, waiting, kvCacheUsage };
}

/**
 * Waiting requests per running one the engine should hold. The queue must cover the time the
 * agent takes to turn a completion into the next request (event-loop lag on a busy node
 * included): at 10%, 26 requests on a 256-slot engine doing ~1,000 req/s, it ran dry whenever
 * the agent lagged by 25 ms (4.3% idle slots); at 50%, 1.6% on a loaded machine; at 100%, 0.4%.
 * A queued request costs vLLM nothing but its place in line.
 */
const QUEUE_FRACTION = 1;

/** The queue the engine should hold: enough to refill finishing slots at once, no more. */
export function targetWaiting(running: number): number {
  return Math.max(2, Math.ceil(QUEUE_FRACTION * running));
}

/** Growth factor per sample while the engine has spare slots; fast enough to fill 256 slots in a few seconds. */
const GROWTH = 1.5;
/** Latency counts as rising once a window's mean exceeds the best window mean by this factor. */
const LATENCY_RISE = 1.5;
/** Multiplicative decrease of the AIMD fallback. */
const DECREASE = 0.7;

/**
 * Pure limit controller: fed engine load samples (preferred) or per-request samples (the
 * fallback when the engine has no metrics), it moves `limit` within [min, max]. No I/O, no clock.
 */
export class ConcurrencyController {
  private current: number;
  private readonly listeners = new Set<(limit: number) => void>();
  /** Whether the last metrics poll worked; request samples only steer the limit when it did not. */
  private metricsLive = false;
  private windowCount = 0;
  private windowLatency = 0;
  private windowTrouble = false;
  private bestLatency = Infinity;

  constructor(readonly bounds: ConcurrencyBounds) {
    this.current = this.clamp(bounds.initial);
  }

  get limit(): number {
    return this.current;
  }

  get mode(): "metrics" | "latency" {
    return this.metricsLive ? "metrics" : "latency";
  }

  /** Calls `fn` with every new limit; returns the unsubscribe. */
  onChange(fn: (limit: number) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * One metrics sample. A queue longer than the target means every slot is busy, so `running` is
   * the engine's capacity and the limit becomes capacity plus target. An empty queue with the
   * agent's limit in use means slots may be spare: grow. An empty queue with the limit not in use
   * (between chunks, a slow input) says nothing about capacity: hold.
   */
  observeLoad(load: EngineLoad): number {
    this.metricsLive = true;
    this.resetWindow();
    const target = targetWaiting(load.running);
    const inEngine = load.running + load.waiting;
    if (load.waiting > target) return this.set(load.running + target);
    if (load.waiting > 0) return this.set(Math.max(this.current, load.running + target));
    if (inEngine >= this.current * 0.9) return this.set(Math.max(this.current * GROWTH, inEngine + target));
    return this.current;
  }

  /** The engine's metrics could not be read: request samples take over steering. */
  metricsUnavailable(): void {
    this.metricsLive = false;
  }

  /**
   * One finished request. Ignored while metrics steer. Otherwise, per window of `limit` requests
   * (about one round trip of the whole pipeline): any error or back-pressure, or a mean latency
   * well above the best seen, cuts the limit by DECREASE; a calm window adds one.
   */
  observeRequest(sample: RequestSample): number {
    if (this.metricsLive) return this.current;
    this.windowCount++;
    this.windowLatency += sample.latencyMs;
    if (sample.outcome !== "ok") this.windowTrouble = true;
    if (sample.outcome === "backpressure") {
      // Back-pressure is the engine saying "full" right now: waiting a window to react would overfill it further.
      this.resetWindow();
      return this.set(this.current * DECREASE);
    }
    if (this.windowCount < this.current) return this.current;
    const mean = this.windowLatency / this.windowCount;
    const trouble = this.windowTrouble;
    this.resetWindow();
    if (trouble || mean > this.bestLatency * LATENCY_RISE) return this.set(this.current * DECREASE);
    this.bestLatency = Math.min(this.bestLatency, mean);
    return this.set(this.current + 1);
  }

  private resetWindow(): void {
    this.windowCount = 0;
    this.windowLatency = 0;
    this.windowTrouble = false;
  }

  private clamp(n: number): number {
    return Math.min(this.bounds.max, Math.max(this.bounds.min, Math.floor(n)));
  }

  private set(n: number): number {
    const next = this.clamp(n);
    if (next !== this.current) {
      this.current = next;
      for (const fn of this.listeners) fn(next);
    }
    return next;
  }
}

export interface LoadPollerDeps {
  controller: ConcurrencyController;
  /** GET /metrics of the engine, as text; rejects when unavailable. */
  fetchMetrics: (signal: AbortSignal) => Promise<string>;
  log: Logger;
  intervalMs: number;
  /** Called with every load read (the agent's metrics show the last one). */
  onLoad?: (load: EngineLoad) => void;
  /** Minimum gap between two "limit changed" info lines. */
  logEveryMs?: number;
  now?: () => number;
}

/** Polls the engine's metrics into the controller until stopped; logs limit changes, rate-limited. */
export function startLoadPoller(deps: LoadPollerDeps): Loop {
  const { controller, log } = deps;
  const now = deps.now ?? Date.now;
  const logEveryMs = deps.logEveryMs ?? 5_000;
  let lastLogAt = -Infinity;
  let lastLogged = controller.limit;
  let warned = false;

  async function poll(stopped: AbortSignal): Promise<void> {
    try {
      const load = parseEngineLoad(await deps.fetchMetrics(AbortSignal.any([stopped, AbortSignal.timeout(deps.intervalMs * 4)])));
      if (!load) throw new Error("the engine's /metrics has no vllm:num_requests_running / vllm:num_requests_waiting");
      controller.observeLoad(load);
      deps.onLoad?.(load);
      warned = false;
    } catch (err) {
      if (stopped.aborted) return;
      controller.metricsUnavailable();
      if (!warned) log.warn({ err: err instanceof Error ? err.message : String(err) }, "engine metrics unavailable; sizing concurrency by latency");
      warned = true;
    }
    const limit = controller.limit;
    if (limit !== lastLogged && now() - lastLogAt >= logEveryMs) {
      log.info({ concurrency: limit, previous: lastLogged, mode: controller.mode }, "concurrency limit changed");
      lastLogged = limit;
      lastLogAt = now();
    }
  }

  return startTicker("load-poller", log, deps.intervalMs, poll);
}

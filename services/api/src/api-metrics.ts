import { BATCH_STATUSES, registerProcessMetrics, type ApiConfig, type Db, type Logger } from "@barge/core";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { LIVE_LEASES } from "./health-report.js";
import { liveAgents, queueCounts } from "./store/health.js";
import { batchesByStatus, maxUnfinishedChunkFailures, usageTotals } from "./store/metrics.js";

/** Request durations in seconds: API calls answer in milliseconds, uploads and result downloads may take minutes. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** What a scrape reads from Postgres: the same figures on every API replica. */
interface Figures {
  batches: Awaited<ReturnType<typeof batchesByStatus>>;
  queue: Awaited<ReturnType<typeof queueCounts>>;
  liveAgents: number;
  maxChunkFailures: number;
  usage: Awaited<ReturnType<typeof usageTotals>>;
}

/**
 * The API's Prometheus metrics, in a registry of its own (one per app, never the library's
 * global one). HTTP requests are counted as they end; the queue, fleet and usage figures are read
 * from Postgres at each scrape, so any number of replicas report the same.
 */
export class ApiMetrics {
  readonly contentType: string;
  private readonly registry = new Registry();
  private readonly requests: Counter<"method" | "route" | "status">;
  private readonly duration: Histogram<"method" | "route">;
  private processMetrics = false;

  constructor(private readonly deps: { db: Db; log: Logger; config: Pick<ApiConfig, "LEASE_SECONDS"> }) {
    this.contentType = this.registry.contentType;
    this.requests = new Counter({
      name: "barge_http_requests_total",
      help: "HTTP requests answered, by method, route pattern and status.",
      labelNames: ["method", "route", "status"],
      registers: [this.registry],
    });
    this.duration = new Histogram({
      name: "barge_http_request_duration_seconds",
      help: "Time from a request's arrival to its response, by method and route pattern.",
      labelNames: ["method", "route"],
      buckets: DURATION_BUCKETS,
      registers: [this.registry],
    });
  }

  /** One answered request; `route` is the matched pattern, never the raw path. */
  observeRequest(method: string, route: string, status: number, seconds: number): void {
    this.requests.inc({ method, route, status: String(status) });
    this.duration.observe({ method, route }, seconds);
  }

  /** The exposition text: process and HTTP metrics, then the figures read from Postgres now. */
  async render(now = new Date()): Promise<string> {
    // Started by the first scrape: the GC observer and event-loop monitor cost an app nobody scrapes nothing.
    if (!this.processMetrics) {
      registerProcessMetrics(this.registry);
      this.processMetrics = true;
    }
    const figures = await this.read(now).catch((err: unknown) => {
      this.deps.log.warn({ err }, "metrics: database unreachable; the queue figures are left out");
      return undefined;
    });
    const scrape = new Registry();
    gauge(scrape, "barge_database_up", "1 when this scrape read the queue figures from Postgres, 0 when it could not.").set(figures ? 1 : 0);
    if (figures) addFigures(scrape, figures, now);
    return Registry.merge([this.registry, scrape]).metrics();
  }

  private async read(now: Date): Promise<Figures> {
    const { db } = this.deps;
    // Live as /health counts them, so the page and the gauge never disagree.
    const since = new Date(now.getTime() - LIVE_LEASES * this.deps.config.LEASE_SECONDS * 1000);
    const [batches, queue, agents, maxChunkFailures, usage] = await Promise.all([
      batchesByStatus(db),
      queueCounts(db),
      liveAgents(db, since),
      maxUnfinishedChunkFailures(db),
      usageTotals(db),
    ]);
    return { batches, queue, liveAgents: agents.length, maxChunkFailures, usage };
  }
}

function gauge(registry: Registry, name: string, help: string, labelNames: string[] = []): Gauge {
  return new Gauge({ name, help, labelNames, registers: [registry] });
}

function counter(registry: Registry, name: string, help: string, labelNames: string[]): Counter {
  return new Counter({ name, help, labelNames, registers: [registry] });
}

/** The figures as series; every batch status is present (0 when none), so a panel never loses a line. */
function addFigures(registry: Registry, f: Figures, now: Date): void {
  const batches = gauge(registry, "barge_batches", "Batches by status.", ["status"]);
  for (const status of BATCH_STATUSES) batches.set({ status }, f.batches.get(status) ?? 0);
  gauge(registry, "barge_queued_requests", "Requests of queued and leased chunks not yet committed.").set(f.queue.queuedRequests);
  gauge(registry, "barge_active_batches", "Batches validating, in progress, finalizing or cancelling.").set(f.queue.activeBatches);
  gauge(registry, "barge_live_agents", "Agents whose last heartbeat is recent enough to count them live.").set(f.liveAgents);
  const oldest = f.queue.oldestWaiting === null ? 0 : Math.max(0, (now.getTime() - f.queue.oldestWaiting.getTime()) / 1000);
  gauge(registry, "barge_oldest_waiting_batch_seconds", "Age of the oldest batch with a queued chunk; 0 when nothing waits.").set(oldest);
  gauge(registry, "barge_chunk_failures_max", "Most failed claims (lapsed leases, failed runs) of any queued or leased chunk.").set(f.maxChunkFailures);
  const requests = counter(registry, "barge_requests_total", "Committed requests per model, by outcome (output or error line).", ["model", "outcome"]);
  const tokens = counter(registry, "barge_tokens_total", "Committed tokens per model, by direction (input: prompt, output: completion).", ["model", "direction"]);
  for (const u of f.usage) {
    requests.inc({ model: u.model, outcome: "completed" }, u.requests - u.failed);
    requests.inc({ model: u.model, outcome: "failed" }, u.failed);
    tokens.inc({ model: u.model, direction: "input" }, u.promptTokens);
    tokens.inc({ model: u.model, direction: "output" }, u.completionTokens);
  }
}

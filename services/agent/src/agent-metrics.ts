import { registerProcessMetrics, type GpuReading } from "@barge/core";
import { Counter, Gauge, Registry } from "prom-client";
import type { EngineLoad } from "./engine/concurrency.js";

/** Live values the metrics read at scrape time rather than copy on every change. */
export interface AgentGauges {
  concurrencyLimit(): number;
  inflight(): number;
  activeRuns(): number;
  /** The GPUs as the heartbeat last read them; null when there are none to show. */
  gpus(): GpuReading[] | null;
  /** Why new claims are paused (a hot GPU); null while the agent claims. */
  claimsPausedReason(): string | null;
}

/** One labelled gauge per GPU reading, for the readings that have a value. */
const GPU_SERIES: { name: string; help: string; value: (g: GpuReading) => number | null }[] = [
  { name: "barge_gpu_temperature_celsius", help: "GPU temperature as nvidia-smi last read it.", value: (g) => g.temperature_c },
  { name: "barge_gpu_utilization_ratio", help: "GPU utilization (0-1) as nvidia-smi last read it.", value: (g) => (g.utilization_percent === null ? null : g.utilization_percent / 100) },
  { name: "barge_gpu_memory_used_bytes", help: "GPU memory in use as nvidia-smi last read it.", value: (g) => (g.memory_used_mib === null ? null : g.memory_used_mib * 1024 * 1024) },
  { name: "barge_gpu_memory_total_bytes", help: "GPU memory as nvidia-smi last read it.", value: (g) => (g.memory_total_mib === null ? null : g.memory_total_mib * 1024 * 1024) },
  { name: "barge_gpu_power_watts", help: "GPU power draw as nvidia-smi last read it.", value: (g) => g.power_w },
];

/**
 * The agent's Prometheus metrics, in a registry of its own (one per agent, never the library's
 * global one): counters it bumps as work happens, and gauges read at scrape time.
 */
export class AgentMetrics {
  private readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  /** The engine's scheduler gauges as last read; unset until the first successful read. */
  engineLoad: EngineLoad | undefined;
  private processMetrics = false;
  private readonly completed: Counter;
  private readonly failed: Counter;
  private readonly claimed: Counter;
  private readonly chunksDone: Counter;
  private readonly rescued: Counter;
  private engineGauges: (() => void) | undefined;

  constructor(gauges: AgentGauges, opts: { gpuMaxTempC: number }) {
    const registers = [this.registry];
    const live = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    live("barge_agent_concurrency_limit", "Current limit on in-flight engine requests (adaptive).", gauges.concurrencyLimit);
    live("barge_agent_requests_in_flight", "Engine requests in flight, across chunk runs.", gauges.inflight);
    live("barge_agent_chunk_runs_active", "Chunk runs this agent holds (at most two).", gauges.activeRuns);
    // Registered with the first engine reading: until then they are left out rather than shown as 0.
    this.engineGauges = () => {
      live("barge_agent_engine_requests_running", "vllm:num_requests_running as last read from the engine.", () => this.engineLoad!.running);
      live("barge_agent_engine_requests_waiting", "vllm:num_requests_waiting as last read from the engine.", () => this.engineLoad!.waiting);
      live("barge_agent_engine_kv_cache_usage_ratio", "vllm:kv_cache_usage_perc (0-1) as last read from the engine.", () => this.engineLoad!.kvCacheUsage);
    };
    live("barge_agent_claims_paused", "1 while the agent claims no new chunk (a GPU over its limit), else 0.", () => (gauges.claimsPausedReason() === null ? 0 : 1));
    live("barge_gpu_temperature_limit_celsius", "GPU_MAX_TEMP_C: over it the agent claims no new chunk.", () => opts.gpuMaxTempC);
    for (const s of GPU_SERIES) {
      new Gauge({
        name: s.name,
        help: s.help,
        labelNames: ["gpu", "name"],
        registers,
        collect() {
          // Only the GPUs of the last reading: one that vanished (or a failed read) shows no stale value.
          this.reset();
          for (const g of gauges.gpus() ?? []) {
            const v = s.value(g);
            if (v !== null) this.set({ gpu: String(g.index), name: g.name }, v);
          }
        },
      });
    }
    const counter = (name: string, help: string) => new Counter({ name, help, registers });
    this.completed = counter("barge_agent_requests_completed_total", "Requests the engine answered with a 2xx (output lines).");
    this.failed = counter("barge_agent_requests_failed_total", "Requests that ended as error lines.");
    this.claimed = counter("barge_agent_chunks_claimed_total", "Chunks claimed.");
    this.chunksDone = counter("barge_agent_chunks_completed_total", "Chunk runs that committed their chunk's last request.");
    this.rescued = counter("barge_agent_chunks_rescued_total", "Chunks whose lease had lapsed that this agent's housekeeping returned to the queue.");
  }

  /** The engine's load as just read. */
  observeEngineLoad(load: EngineLoad): void {
    this.engineLoad = load;
    this.engineGauges?.();
    this.engineGauges = undefined;
  }

  /** One result line built: counted as completed or failed by where it goes. */
  countResult(kind: "output" | "error"): void {
    (kind === "output" ? this.completed : this.failed).inc();
  }

  countClaim(): void {
    this.claimed.inc();
  }

  countChunkCompleted(): void {
    this.chunksDone.inc();
  }

  countRescued(chunks: number): void {
    this.rescued.inc(chunks);
  }

  /** The exposition text, in Prometheus' text format (`registry.contentType`). */
  render(): Promise<string> {
    // Started by the first scrape: an agent nobody scrapes runs no GC observer or event-loop monitor.
    if (!this.processMetrics) {
      registerProcessMetrics(this.registry);
      this.processMetrics = true;
    }
    return this.registry.metrics();
  }
}

import type { EngineLoad } from "./engine/concurrency.js";

/** Live values the metrics read at scrape time rather than copy on every change. */
export interface AgentGauges {
  concurrencyLimit(): number;
  inflight(): number;
  activeRuns(): number;
}

interface Metric {
  name: string;
  type: "gauge" | "counter";
  help: string;
  value: () => number | undefined;
}

/**
 * The agent's counters and gauges, rendered in the Prometheus text format (0.0.4). A dozen
 * unlabelled series do not need a client library.
 */
export class AgentMetrics {
  requestsCompleted = 0;
  requestsFailed = 0;
  chunksClaimed = 0;
  chunksCompleted = 0;
  /** The engine's scheduler gauges as last read; unset until the first successful read. */
  engineLoad: EngineLoad | undefined;

  private readonly metrics: Metric[];

  constructor(gauges: AgentGauges) {
    this.metrics = [
      { name: "barge_agent_concurrency_limit", type: "gauge", help: "Current limit on in-flight engine requests (adaptive).", value: gauges.concurrencyLimit },
      { name: "barge_agent_requests_in_flight", type: "gauge", help: "Engine requests in flight, across chunk runs.", value: gauges.inflight },
      { name: "barge_agent_chunk_runs_active", type: "gauge", help: "Chunk runs this agent holds (at most two).", value: gauges.activeRuns },
      { name: "barge_agent_engine_requests_running", type: "gauge", help: "vllm:num_requests_running as last read from the engine.", value: () => this.engineLoad?.running },
      { name: "barge_agent_engine_requests_waiting", type: "gauge", help: "vllm:num_requests_waiting as last read from the engine.", value: () => this.engineLoad?.waiting },
      { name: "barge_agent_requests_completed_total", type: "counter", help: "Requests the engine answered with a 2xx (output lines).", value: () => this.requestsCompleted },
      { name: "barge_agent_requests_failed_total", type: "counter", help: "Requests that ended as error lines.", value: () => this.requestsFailed },
      { name: "barge_agent_chunks_claimed_total", type: "counter", help: "Chunks claimed.", value: () => this.chunksClaimed },
      { name: "barge_agent_chunks_completed_total", type: "counter", help: "Chunk runs that committed their chunk's last request.", value: () => this.chunksCompleted },
    ];
  }

  /** One result line built: counted as completed or failed by where it goes. */
  countResult(kind: "output" | "error"): void {
    if (kind === "output") this.requestsCompleted++;
    else this.requestsFailed++;
  }

  /** The exposition text; a gauge with no value yet is left out. */
  render(): string {
    let text = "";
    for (const m of this.metrics) {
      const v = m.value();
      if (v === undefined) continue;
      text += `# HELP ${m.name} ${m.help}\n# TYPE ${m.name} ${m.type}\n${m.name} ${v}\n`;
    }
    return text;
  }
}

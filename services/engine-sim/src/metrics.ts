import type { GpuCounters } from "./gpu.js";

// GET /metrics in Prometheus text format, under vLLM's metric names so dashboards and the
// agent's load reading work unchanged against the sim; barge_sim_* are the sim's own.

/** The label set every metric carries, naming the served model as vLLM does. */
export function modelLabels(model: string): string {
  return `{model_name="${escapeLabel(model)}"}`;
}

/** The /metrics page for the GPU model's current counters. */
export function renderMetrics(c: GpuCounters, maxNumSeqs: number, labels: string): string {
  // HELP and TYPE name the sample itself (`_total` included), as vLLM's Python client prints them,
  // so the family and its sample stay one in every Prometheus parser.
  const metric = (name: string, type: "gauge" | "counter", help: string, suffix: string, value: number): string =>
    `# HELP ${name}${suffix} ${help}\n# TYPE ${name}${suffix} ${type}\n${name}${suffix}${labels} ${value}\n`;
  return [
    metric("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", "", c.running),
    metric("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", "", c.waiting),
    metric("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage (simulated: running / max_num_seqs).", "", c.running / maxNumSeqs),
    metric("vllm:prompt_tokens", "counter", "Number of prefill tokens processed.", "_total", c.promptTokensTotal),
    metric("vllm:generation_tokens", "counter", "Number of generation tokens processed.", "_total", c.generationTokensTotal),
    metric("vllm:request_success", "counter", "Count of successfully processed requests.", "_total", c.completed),
    metric("barge_sim_idle_slot_seconds", "counter", "Simulated slot-seconds left unused while the sim was active.", "_total", c.idleSlotSeconds),
    metric("barge_sim_busy_slot_seconds", "counter", "Simulated slot-seconds spent serving requests.", "_total", c.busySlotSeconds),
    metric("barge_sim_requests_aborted", "counter", "Requests whose client disconnected while waiting or running.", "_total", c.aborted),
  ].join("");
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

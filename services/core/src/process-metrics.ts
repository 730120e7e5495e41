import { collectDefaultMetrics, type Registry } from "prom-client";

/**
 * prom-client's `*_total` gauges break Prometheus' naming rule (promtool flags them); the same
 * figures are in their by-type gauges (`nodejs_active_handles{type}` and the like).
 */
const MISNAMED_DEFAULT_GAUGES = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"];

/** Registers prom-client's process metrics (CPU, memory, event loop, GC) on `registry`, less the misnamed ones. */
export function registerProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED_DEFAULT_GAUGES) registry.removeSingleMetric(name);
}

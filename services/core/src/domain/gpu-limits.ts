import type { Config } from "../config.js";
import type { GpuReading } from "../db/schema.js";

/** GPU protection's limits: the agent's claim gate and the health page's `healthy` read the same ones. */
export interface GpuLimits {
  maxTempC: number;
  /** Unset: memory never pauses claims (vLLM preallocates most of it by design). */
  maxMemoryPercent?: number | undefined;
  /** How far under each limit every GPU must be before claims resume, in °C and in memory points. */
  resumeMargin: number;
}

/** The limits from the settings. */
export function gpuLimits(config: Pick<Config, "GPU_MAX_TEMP_C" | "GPU_MAX_MEMORY_PERCENT" | "GPU_RESUME_MARGIN">): GpuLimits {
  return { maxTempC: config.GPU_MAX_TEMP_C, maxMemoryPercent: config.GPU_MAX_MEMORY_PERCENT, resumeMargin: config.GPU_RESUME_MARGIN };
}

/** A GPU's memory in use, in percent of its total; null when either is unknown. */
export function gpuMemoryPercent(g: GpuReading): number | null {
  if (g.memory_used_mib === null || g.memory_total_mib === null || g.memory_total_mib <= 0) return null;
  return (g.memory_used_mib / g.memory_total_mib) * 100;
}

/** Why one GPU is over its limits lowered by `slack` (the resume margin, while paused), or undefined when it is not. */
export function gpuOverLimit(g: GpuReading, limits: GpuLimits, slack = 0): string | undefined {
  if (g.temperature_c !== null && g.temperature_c > limits.maxTempC - slack) return `gpu ${g.index} at ${g.temperature_c} °C (limit ${limits.maxTempC})`;
  const memory = gpuMemoryPercent(g);
  if (limits.maxMemoryPercent !== undefined && memory !== null && memory > limits.maxMemoryPercent - slack) {
    return `gpu ${g.index} memory at ${Math.round(memory)}% (limit ${limits.maxMemoryPercent}%)`;
  }
  return undefined;
}

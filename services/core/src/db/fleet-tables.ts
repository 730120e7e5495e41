import type { ColumnType } from "kysely";
import type { CreatedAt, Json, Timestamp } from "./column-types.js";

// The tables about the fleet rather than the work: who serves what, and how fast models ran.

export interface AgentsTable {
  id: string;
  models: Json<string[]>;
  hostname: string;
  started_at: CreatedAt;
  last_seen_at: Timestamp;
  /** The GPUs' last readings (from `nvidia-smi`), or null where none was read. */
  gpus: ColumnType<GpuReading[] | null, string | null | undefined, string | null>;
  /** The engine's KV-cache usage (0-1) from its `/metrics`, or null when unknown. */
  kv_cache_usage: number | null;
  /** Why the agent claims no new chunks (a hot GPU, say); null while it claims. */
  claims_paused_reason: string | null;
  in_flight: number | null;
  concurrency_limit: number | null;
}

/** One GPU's state as an agent last read it. */
export interface GpuReading {
  index: number;
  name: string;
  // null: nvidia-smi printed "[N/A]" (or "[Not Supported]") for that field on this GPU.
  utilization_percent: number | null;
  memory_used_mib: number | null;
  memory_total_mib: number | null;
  temperature_c: number | null;
  power_w: number | null;
}

/** Observed speed of finished batches per model, for completion estimates of queued ones. */
export interface ModelThroughputTable {
  model: string;
  requests_per_sec: number;
  tokens_per_sec: number;
  batches: number;
  updated_at: Timestamp;
}

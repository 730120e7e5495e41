// The shapes of the API answers the page reads (the API's OpenAPI document has them all).

export interface Batch {
  id: string;
  status: string;
  endpoint: string;
  model?: string | null;
  created_at: number;
  output_file_id: string | null;
  error_file_id: string | null;
  errors: { data: { code: string; message: string; line: number | null; param?: string | null }[] } | null;
  request_counts: { total: number; completed: number; failed: number };
  throughput_tokens_per_sec: number | null;
  estimated_completion: number | null;
  paused?: boolean;
}

export interface List<T> {
  data: T[];
  has_more: boolean;
  last_id: string | null;
}

export interface Session {
  auth: "open" | "required";
  principal: "anonymous" | "tenant" | "admin";
  tenant: string | null;
}

export interface Gpu {
  agent_id: string;
  index: number;
  name: string;
  utilization_percent: number | null;
  memory_used_mib: number | null;
  memory_total_mib: number | null;
  memory_percent: number | null;
  temperature_c: number | null;
  healthy: boolean;
}

export interface Worker {
  id: string;
  host: string;
  models: string[];
  status: string;
  paused_reason: string | null;
  current_batch_ids: string[];
  heartbeat_age_seconds: number;
  in_flight: number | null;
  concurrency_limit: number | null;
}

export interface Health {
  status: string;
  reasons: string[];
  gpu: Gpu[];
  workers?: Worker[];
  queue: { active_jobs: number; total_queued_requests: number; oldest_waiting_seconds: number | null } | null;
}

export interface ThroughputPoint {
  t: number;
  requests_per_sec: number;
  tokens_per_sec: number;
}

export interface BatchEvent {
  id: string;
  kind: string;
  created_at: number;
  data: Record<string, unknown>;
}

export interface RequestError {
  custom_id: string;
  code: string;
  message: string;
  attempts: number;
  status_code: number | null;
  line: number | null;
}

export interface UsageResult {
  project_id: string;
  model: string | null;
  num_model_requests: number;
  failed_requests: number;
  input_tokens: number;
  output_tokens: number;
}

/** Batch statuses in the order a batch moves through them (the list's filter). */
export const STATUSES = ["validating", "in_progress", "finalizing", "completed", "failed", "cancelling", "cancelled", "expired"] as const;
/** Statuses a batch can still be cancelled in (the API's cancellable set). */
export const CANCELLABLE = new Set(["validating", "in_progress"]);
export const FINAL = new Set(["completed", "failed", "cancelled", "expired"]);

import { z } from "zod";
import { BATCH_STATUSES, type OpenAIBatch, type OpenAIFile, type OpenAIUpload } from "@barge/core";

// The objects the API answers with, as zod schemas: the OpenAPI document is generated from
// them, and the conformance tests parse every SDK answer with them. The assertions at the end
// keep each schema's type identical to what core's mapping functions return, so neither can
// drift from the other.

const unix = z.number().int();

export const fileObject = z.object({
  id: z.string(),
  object: z.literal("file"),
  bytes: z.number().int(),
  created_at: unix,
  expires_at: unix.nullable(),
  filename: z.string(),
  purpose: z.enum(["batch", "batch_output"]),
  status: z.enum(["uploaded", "processed", "error"]),
  status_details: z.null(),
});

export const fileDeletedObject = z.object({ id: z.string(), object: z.literal("file"), deleted: z.literal(true) });

/** OpenAI's Batch object; the fields after `metadata` are Barge's extensions, which OpenAI SDKs ignore. */
export const batchObject = z.object({
  id: z.string(),
  object: z.literal("batch"),
  endpoint: z.string(),
  model: z.string().nullable(),
  errors: z
    .object({
      object: z.literal("list"),
      data: z.array(z.object({ code: z.string(), message: z.string(), param: z.string().nullable(), line: z.number().int().nullable() })),
    })
    .nullable(),
  input_file_id: z.string(),
  completion_window: z.string(),
  status: z.enum(BATCH_STATUSES),
  output_file_id: z.string().nullable(),
  error_file_id: z.string().nullable(),
  created_at: unix,
  in_progress_at: unix.nullable(),
  expires_at: unix.nullable(),
  finalizing_at: unix.nullable(),
  completed_at: unix.nullable(),
  failed_at: unix.nullable(),
  expired_at: unix.nullable(),
  cancelling_at: unix.nullable(),
  cancelled_at: unix.nullable(),
  request_counts: z.object({ total: z.number().int(), completed: z.number().int(), failed: z.number().int() }),
  usage: z.object({
    input_tokens: z.number().int(),
    input_tokens_details: z.object({ cached_tokens: z.number().int() }),
    output_tokens: z.number().int(),
    output_tokens_details: z.object({ reasoning_tokens: z.number().int() }),
    total_tokens: z.number().int(),
  }),
  metadata: z.record(z.string(), z.string()).nullable(),
  output_expires_after: z.object({ anchor: z.literal("created_at"), seconds: z.number().int() }).nullable(),
  priority: z.number().int(),
  /** Barge: when the batch was paused (`POST /v1/batches/{id}/pause`); null while it runs. */
  paused_at: unix.nullable(),
  /** Barge: the failure threshold given at create, and why the batch was cancelled when nobody asked. */
  max_failure_rate: z.number().nullable(),
  min_requests: z.number().int().nullable(),
  cancel_reason: z.string().nullable(),
  retry_of: z.string().nullable(),
  progress: z.object({ total: z.number().int(), completed: z.number().int(), failed: z.number().int(), percent: z.number() }),
  output_location: z.object({ bucket: z.string(), key: z.string(), errors_key: z.string().nullable() }).nullable(),
  results_url: z.string().nullable(),
  throughput_tokens_per_sec: z.number().nullable(),
  estimated_completion: unix.nullable(),
});

/** The create's answer: the one-shot form adds the seeds' `batch_id` (the id) and `total_requests` (the upload's lines). */
export const createdBatchObject = batchObject.extend({
  batch_id: z.string().optional().describe("One-shot multipart create only: the batch's id, as the seeds' clients read it."),
  total_requests: z.number().int().optional().describe("One-shot multipart create only: the upload's non-blank lines, counted as it streamed."),
});

export const uploadObject = z.object({
  id: z.string(),
  object: z.literal("upload"),
  bytes: z.number().int(),
  created_at: unix,
  expires_at: unix,
  filename: z.string(),
  purpose: z.enum(["batch", "batch_output"]),
  status: z.enum(["pending", "completed", "cancelled", "expired"]),
  file: fileObject.nullable(),
});

export const uploadPartObject = z.object({ id: z.string(), object: z.literal("upload.part"), created_at: unix, upload_id: z.string() });

/** One failed request in `GET /v1/batches/{id}/errors`. */
export const requestErrorObject = z.object({
  object: z.literal("batch.request_error"),
  custom_id: z.string(),
  code: z.string(),
  message: z.string(),
  attempts: z.number().int(),
  status_code: z.number().int().nullable(),
  line: z.number().int(),
});

/** One entry of a batch's timeline in `GET /v1/batches/{id}/logs`. */
export const batchEventObject = z.object({
  object: z.literal("batch.event"),
  id: z.string(),
  kind: z.string(),
  created_at: z.number().int(),
  data: z.record(z.string(), z.unknown()),
});

export const presignObject = z.object({
  id: z.string(),
  object: z.literal("file.upload"),
  upload_url: z.string(),
  method: z.literal("PUT"),
  expires_at: unix,
  key: z.string(),
});

export const modelListObject = z.object({
  object: z.literal("list"),
  data: z.array(z.object({ id: z.string(), object: z.literal("model"), created: unix, owned_by: z.string(), shutdown_date: z.string().nullable() })),
});

/** One GPU of one live agent, as its last heartbeat read it; null fields are ones nvidia-smi did not report. */
const healthGpu = z.object({
  agent_id: z.string(),
  index: z.number().int(),
  name: z.string(),
  utilization_percent: z.number().nullable(),
  memory_used_mib: z.number().nullable(),
  memory_total_mib: z.number().nullable(),
  memory_percent: z.number().nullable(),
  temperature_c: z.number().nullable(),
  power_w: z.number().nullable(),
  /** Within GPU_MAX_TEMP_C and GPU_MAX_MEMORY_PERCENT. */
  healthy: z.boolean(),
});

const healthWorker = z.object({
  id: z.string(),
  host: z.string(),
  models: z.array(z.string()),
  status: z.enum(["processing", "idle", "paused"]),
  paused_reason: z.string().nullable(),
  current_batch_ids: z.array(z.string()),
  heartbeat_age_seconds: z.number(),
  in_flight: z.number().int().nullable(),
  concurrency_limit: z.number().int().nullable(),
  kv_cache_usage: z.number().nullable(),
});

export const healthObject = z.object({
  status: z.enum(["healthy", "degraded", "unhealthy"]),
  reasons: z.array(z.string()),
  gpu: z.array(healthGpu),
  /** Absent for a caller without the API key when one is configured: it names batches. */
  workers: z.array(healthWorker).optional(),
  /** Null while Postgres is unreachable. */
  queue: z
    .object({
      active_jobs: z.number().int(),
      max_queue_depth: z.number().int(),
      queue_available: z.boolean(),
      total_queued_requests: z.number().int(),
      oldest_waiting_seconds: z.number().nullable(),
    })
    .nullable(),
  limits: z.object({
    max_requests_per_job: z.number().int(),
    max_queue_depth: z.number().int(),
    max_total_queued_requests: z.number().int(),
    max_file_bytes: z.number().int(),
  }),
});

export const livezObject = z.object({ status: z.literal("ok") });

export const readyzObject = z.object({
  status: z.enum(["ready", "unready"]),
  /** Absent while the API is still starting: it has not yet reached every dependency. */
  checks: z.object({ database: z.enum(["ok", "unreachable"]), bucket: z.enum(["ok", "unreachable"]) }).optional(),
  /** Why it is not ready, when it is not. */
  reason: z.string().optional(),
});

export const errorObject = z.object({
  error: z.object({ message: z.string(), type: z.string(), param: z.string().nullable(), code: z.string().nullable() }),
});

/** OpenAI's cursor page of `item`. */
export function listObject<T extends z.ZodType>(item: T) {
  return z.object({ object: z.literal("list"), data: z.array(item), first_id: z.string().nullable(), last_id: z.string().nullable(), has_more: z.boolean() });
}

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Expect<T extends true> = T;
/** Compile-time only: the type check fails when a schema and core's mapping disagree. */
export type SchemasMatchCore = [
  Expect<Same<z.infer<typeof batchObject>, OpenAIBatch>>,
  Expect<Same<z.infer<typeof fileObject>, OpenAIFile>>,
  Expect<Same<z.infer<typeof uploadObject>, OpenAIUpload>>,
];

import type { BatchErrorEntry, BatchRow, FileRow, UploadRow } from "../db/schema.js";

const unix = (d: Date | null | undefined): number | null => (d ? Math.floor(d.getTime() / 1000) : null);

/** OpenAI's File object for a file row. */
export function toOpenAIFile(f: FileRow) {
  return {
    id: f.id,
    object: "file" as const,
    bytes: f.bytes,
    created_at: unix(f.created_at)!,
    expires_at: unix(f.expires_at),
    filename: f.filename,
    purpose: f.purpose,
    status: f.status === "pending" ? "uploaded" : f.status,
    status_details: null,
  };
}

/** Committed progress of a batch, summed from its chunks' checkpoints. */
export interface BatchProgress {
  completed: number;
  failed: number;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
}

export const emptyProgress: BatchProgress = {
  completed: 0,
  failed: 0,
  promptTokens: 0,
  completionTokens: 0,
  cachedTokens: 0,
  reasoningTokens: 0,
};

/** Barge's additions to the Batch object that need more than the row; OpenAI SDKs ignore unknown fields. */
export interface BatchExtras {
  output_location: { bucket: string; key: string; errors_key: string | null } | null;
  results_url: string | null;
  /** Input plus output tokens per second since the batch started, up to now or to its last chunk. */
  throughput_tokens_per_sec: number | null;
  /** Unix seconds when the batch should be done, while it runs. */
  estimated_completion: number | null;
}

/** A batch's token usage in the shape of OpenAI's Batch object (and Barge's manifest). */
export function openAIUsage(p: BatchProgress) {
  return {
    input_tokens: p.promptTokens,
    input_tokens_details: { cached_tokens: p.cachedTokens },
    output_tokens: p.completionTokens,
    output_tokens_details: { reasoning_tokens: p.reasoningTokens },
    total_tokens: p.promptTokens + p.completionTokens,
  };
}

/** OpenAI's Batch object (plus Barge's extension fields) for a batch row. */
export function toOpenAIBatch(b: BatchRow, p: BatchProgress, extras: BatchExtras) {
  const errors: BatchErrorEntry[] | null = b.errors;
  const total = b.total_requests;
  const done = p.completed + p.failed;
  return {
    id: b.id,
    object: "batch" as const,
    endpoint: b.endpoint,
    model: b.model,
    errors: errors && errors.length > 0 ? { object: "list" as const, data: errors } : null,
    input_file_id: b.input_file_id,
    completion_window: b.completion_window,
    status: b.status,
    output_file_id: b.output_file_id,
    error_file_id: b.error_file_id,
    created_at: unix(b.created_at)!,
    in_progress_at: unix(b.in_progress_at),
    expires_at: unix(b.expires_at),
    finalizing_at: unix(b.finalizing_at),
    completed_at: unix(b.completed_at),
    failed_at: unix(b.failed_at),
    expired_at: unix(b.expired_at),
    cancelling_at: unix(b.cancelling_at),
    cancelled_at: unix(b.cancelled_at),
    request_counts: { total, completed: p.completed, failed: p.failed },
    usage: openAIUsage(p),
    metadata: b.metadata,
    output_expires_after:
      b.output_expires_after_seconds === null ? null : { anchor: "created_at" as const, seconds: b.output_expires_after_seconds },
    priority: b.priority,
    /** Barge: set while paused; the status stays `in_progress` so OpenAI's SDKs keep working. */
    paused_at: unix(b.paused_at),
    max_failure_rate: b.max_failure_rate,
    min_requests: b.min_requests,
    /** Why the batch was cancelled when nobody asked (`failure_threshold`); null for a user's cancel. */
    cancel_reason: b.cancel_reason,
    /** The batch whose failed requests this one re-runs (`POST /v1/batches/{id}/retry`). */
    retry_of: b.retry_of,
    /** The seeds' progress: the committed counts beside the percent done (one decimal). */
    progress: { total, completed: p.completed, failed: p.failed, percent: total > 0 ? Math.round((done / total) * 1000) / 10 : 0 },
    ...extras,
  };
}

/** OpenAI's Upload object; `file` is the File it produced, once completed. */
export function toOpenAIUpload(u: UploadRow, file: FileRow | null) {
  return {
    id: u.id,
    object: "upload" as const,
    bytes: u.bytes,
    created_at: unix(u.created_at)!,
    expires_at: unix(u.expires_at)!,
    filename: u.filename,
    purpose: u.purpose,
    status: u.status,
    file: file ? toOpenAIFile(file) : null,
  };
}

export type OpenAIBatch = ReturnType<typeof toOpenAIBatch>;
export type OpenAIFile = ReturnType<typeof toOpenAIFile>;
export type OpenAIUpload = ReturnType<typeof toOpenAIUpload>;

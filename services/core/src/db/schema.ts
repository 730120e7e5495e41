import type { ColumnType, Generated, Insertable, Selectable, Updateable } from "kysely";
import type { BatchStatus, ChunkStatus } from "../domain/batch-state.js";

import type { CreatedAt, Json, Timestamp } from "./column-types.js";
import type { AgentsTable, ModelThroughputTable } from "./fleet-tables.js";
import type { S3ObjectsTable } from "./s3-object-tables.js";
import type { ApiKeysTable, RateLimitsTable, TenantSharesTable, TenantsTable, TenantUsageTable } from "./tenant-tables.js";
import type { WebhookDeliveriesTable, WebhookEventsTable } from "./webhook-tables.js";

// The other tables live by concept in fleet-tables, s3-object-tables, webhook-tables and tenant-tables; their types are re-exported here.
export type * from "./fleet-tables.js";
export type * from "./s3-object-tables.js";
export type * from "./webhook-tables.js";
export type * from "./tenant-tables.js";

/** Internal file states: `pending` is a presigned upload nobody has completed yet and is never shown. */
export type FileStatus = "pending" | "uploaded" | "processed" | "error";
export type FilePurpose = "batch" | "batch_output";

export interface FilesTable {
  id: string;
  tenant: string;
  purpose: FilePurpose;
  filename: string;
  bytes: number;
  status: FileStatus;
  s3_key: string;
  created_at: CreatedAt;
  /** For `pending` uploads: when the presigned URL lapses and the sweeper may delete it. */
  upload_expires_at: Timestamp | null;
  /** OpenAI's `expires_after`, resolved: when the sweeper deletes the file. */
  expires_at: Timestamp | null;
  /** What the upload check validated, for the batch validator to reuse (see `domain/input-check.ts`); null when unchecked. */
  input_check: ColumnType<unknown, string | undefined, string | null>;
  /** The ETag the write of the file's object reported; null for files written before it was kept. */
  etag: string | null;
}

// The statuses live with their moves and timestamps in domain/batch-state.ts; re-exported for the table types' readers.
export type { BatchStatus, ChunkStatus };

export interface BatchErrorEntry {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

export interface BatchesTable {
  id: string;
  tenant: string;
  status: BatchStatus;
  endpoint: string;
  model: string | null;
  input_file_id: string;
  completion_window: string;
  metadata: Json<Record<string, string> | null>;
  priority: Generated<number>;
  errors: Json<BatchErrorEntry[] | null>;
  total_requests: Generated<number>;
  output_file_id: string | null;
  error_file_id: string | null;
  output_key: string | null;
  error_key: string | null;
  created_at: CreatedAt;
  in_progress_at: Timestamp | null;
  expires_at: Timestamp;
  finalizing_at: Timestamp | null;
  completed_at: Timestamp | null;
  failed_at: Timestamp | null;
  expired_at: Timestamp | null;
  cancelling_at: Timestamp | null;
  cancelled_at: Timestamp | null;
  /** Lease for batch-level work (validate, finalize): who holds it, until when, and its fence. */
  worker_id: string | null;
  worker_lease_expires_at: Timestamp | null;
  worker_fence: Generated<number>;
  /** Multipart upload ids of an unfinished stitch, so a crashed finalizer can resume or abort them. */
  stitch_state: Json<Record<string, string> | null>;
  /** OpenAI's `output_expires_after` (anchor `created_at`): output files expire this long after the batch's creation. */
  output_expires_after_seconds: number | null;
  /** An endpoint for this batch's final-state event, besides WEBHOOK_URLS. */
  webhook_url: string | null;
  /** The batch whose failed requests this batch re-runs (`POST /v1/batches/{id}/retry`). */
  retry_of: string | null;
  /** The batch's multipart upload for its output object, which chunk outputs join as parts while it runs. */
  output_upload_id: string | null;
  /** Claims of the batch while `validating`; past VALIDATION_MAX_ATTEMPTS it fails as `validation_failed`. */
  validation_attempts: Generated<number>;
  /** Claims of the batch to finalize it; a permanent error past FINALIZE_MAX_ATTEMPTS fails it as `finalize_failed`. */
  finalize_attempts: Generated<number>;
  /** The ETag of the input object validation read; every later read sends it as If-Match. Null: read unpinned (older batches). */
  input_etag: string | null;
  /** The model came from the multipart form: it replaces each line's body `model` at run time. */
  model_override: Generated<boolean>;
  /** Paused by `POST /v1/batches/{id}/pause`: its chunks are not claimed until it is resumed. */
  paused_at: Timestamp | null;
  /** The failure threshold: past `min_requests` done, a committed failure rate above this cancels the batch. */
  max_failure_rate: number | null;
  min_requests: number | null;
  /** Why a batch was cancelled when nobody asked (`failure_threshold`); null for a user's cancel. */
  cancel_reason: string | null;
  /** Where a serverless batch's results go (`results/<path>/`); null: `outputs/<tenant>/<batch>/`. */
  results_prefix: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface ChunksTable {
  batch_id: string;
  idx: number;
  /** Denormalized from the batch so the claim's ORDER BY is served by one partial index. */
  model: string;
  /** The batch's tenant and deadline, denormalized for the fair-share claim's order. */
  tenant: string;
  expires_at: Timestamp;
  priority: number;
  batch_created_at: Timestamp;
  /** Index of the chunk's first request within the batch, and how many it holds. */
  request_start: number;
  request_count: number;
  /** 1-based line number of the chunk's first line in the input file. */
  start_line: number;
  start_offset: number;
  end_offset: number;
  status: Generated<ChunkStatus>;
  leased_by: string | null;
  lease_expires_at: Timestamp | null;
  fence: Generated<number>;
  attempts: Generated<number>;
  /** The checkpoint: requests committed so far, where the next one starts, and the next segment number. */
  committed: Generated<number>;
  next_offset: number;
  next_line: number;
  next_seq: Generated<number>;
  completed: Generated<number>;
  failed: Generated<number>;
  prompt_tokens: Generated<number>;
  completion_tokens: Generated<number>;
  cached_tokens: Generated<number>;
  reasoning_tokens: Generated<number>;
  updated_at: Generated<Date>;
  done_at: Timestamp | null;
  /** The agent that completed the chunk. */
  done_by: string | null;
  /** Claims that ended in a crash (lapsed lease), a failed run or an engine outage; the poison-chunk cap counts these. */
  failures: Generated<number>;
  /** Why Postgres refused this chunk's results (a permanent error): its next run fails what is left as `unstorable_result`. */
  unstorable_error: string | null;
}

export type SegmentKind = "output" | "error";

export interface SegmentsTable {
  batch_id: string;
  chunk_idx: number;
  seq: number;
  kind: SegmentKind;
  s3_key: string;
  bytes: number;
  lines: number;
  created_at: CreatedAt;
}

/**
 * One part of a batch's output upload, covering chunks `first_chunk..last_chunk` (their output
 * segments in order) as part `first_chunk + 1`. Claimed first; the upload fields are null until
 * the part is uploaded.
 */
export interface OutputPartsTable {
  batch_id: string;
  first_chunk: number;
  last_chunk: number;
  part_number: number;
  bytes: number;
  upload_id: string | null;
  etag: string | null;
  /** Digest of the ordered output segments (key and size) the part was built from. */
  source_digest: string | null;
  created_at: CreatedAt;
  uploaded_at: Timestamp | null;
}

/** One failed request of a batch, committed with the segment holding its error line. */
export interface RequestErrorsTable {
  batch_id: string;
  /** 0-based index of the request in the batch (input order). */
  request_index: number;
  chunk_idx: number;
  custom_id: string;
  /** 1-based line of the request in the input file. */
  line: number;
  code: string;
  message: string;
  /** The engine's HTTP status, or null when it never answered. */
  status_code: number | null;
  /** Engine attempts made (0 when the request was never sent: `chunk_failed`, `batch_expired`). */
  attempts: number;
  created_at: CreatedAt;
}

/** One entry of a batch's timeline; `kind` is one of `BATCH_EVENT_KINDS`. */
export interface BatchEventsTable {
  batch_id: string;
  seq: Generated<string>;
  kind: string;
  data: ColumnType<Record<string, unknown>, string | undefined, string>;
  created_at: CreatedAt;
}

export type UploadStatus = "pending" | "completed" | "cancelled" | "expired";

/** OpenAI's Upload: a file sent in parts, each staged as its own object until `complete` joins them. */
export interface UploadsTable {
  id: string;
  tenant: string;
  filename: string;
  purpose: FilePurpose;
  mime_type: string;
  /** The size the client declared; `complete` checks the chosen parts add up to it. */
  bytes: number;
  status: UploadStatus;
  created_at: CreatedAt;
  expires_at: Timestamp;
  /** The produced file's `expires_after` (anchor `created_at`). */
  file_expires_after_seconds: number | null;
  /** Parts begun so far; each new part takes the next number. */
  parts_started: Generated<number>;
  file_id: string | null;
}

export interface UploadPartsTable {
  id: string;
  upload_id: string;
  part_number: number;
  bytes: number;
  s3_key: string;
  created_at: CreatedAt;
}

/** The typed database Kysely checks every query against. */
export interface Database {
  files: FilesTable;
  batches: BatchesTable;
  chunks: ChunksTable;
  segments: SegmentsTable;
  output_parts: OutputPartsTable;
  request_errors: RequestErrorsTable;
  agents: AgentsTable;
  uploads: UploadsTable;
  upload_parts: UploadPartsTable;
  model_throughput: ModelThroughputTable;
  webhook_events: WebhookEventsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  batch_events: BatchEventsTable;
  s3_objects: S3ObjectsTable;
  api_keys: ApiKeysTable;
  tenants: TenantsTable;
  rate_limits: RateLimitsTable;
  tenant_shares: TenantSharesTable;
  tenant_usage: TenantUsageTable;
}

export type FileRow = Selectable<FilesTable>;
export type BatchRow = Selectable<BatchesTable>;
export type ChunkRow = Selectable<ChunksTable>;
export type SegmentRow = Selectable<SegmentsTable>;
export type OutputPartRow = Selectable<OutputPartsTable>;
export type RequestErrorRow = Selectable<RequestErrorsTable>;
export type UploadRow = Selectable<UploadsTable>;
export type UploadPartRow = Selectable<UploadPartsTable>;
export type NewFile = Insertable<FilesTable>;
export type NewBatch = Insertable<BatchesTable>;
export type NewChunk = Insertable<ChunksTable>;
export type BatchUpdate = Updateable<BatchesTable>;

import type { ColumnType, Generated, Insertable, Selectable, Updateable } from "kysely";

type Timestamp = ColumnType<Date, Date | string, Date | string>;
type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type Json<T> = ColumnType<T, string, string>;

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
  expires_at: Timestamp | null;
}

export type BatchStatus =
  | "validating"
  | "failed"
  | "in_progress"
  | "finalizing"
  | "completed"
  | "expired"
  | "cancelling"
  | "cancelled";

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
}

export type ChunkStatus = "queued" | "leased" | "done" | "cancelled";

export interface ChunksTable {
  batch_id: string;
  idx: number;
  /** Denormalized from the batch so the claim's ORDER BY is served by one partial index. */
  model: string;
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

export interface AgentsTable {
  id: string;
  models: Json<string[]>;
  hostname: string;
  started_at: CreatedAt;
  last_seen_at: Timestamp;
}

/** The typed database Kysely checks every query against. */
export interface Database {
  files: FilesTable;
  batches: BatchesTable;
  chunks: ChunksTable;
  segments: SegmentsTable;
  agents: AgentsTable;
}

export type FileRow = Selectable<FilesTable>;
export type BatchRow = Selectable<BatchesTable>;
export type ChunkRow = Selectable<ChunksTable>;
export type SegmentRow = Selectable<SegmentsTable>;
export type NewBatch = Insertable<BatchesTable>;
export type NewChunk = Insertable<ChunksTable>;
export type BatchUpdate = Updateable<BatchesTable>;

/**
 * The kinds of entry in a batch's timeline (`batch_events`, `GET /v1/batches/{id}/logs`), the
 * one list of them. Each is written in the same transaction as the change it records, so the log
 * never tells of a move that rolled back. Why per chunk attempt and never per request: a
 * 1M-request batch writes hundreds of entries, not millions.
 */
export const BATCH_EVENT_KINDS = [
  /** The batch row was made (`data`: model, input_file_id, retry_of when a retry). */
  "created",
  /** Validation passed (`data`: lines, chunks, seconds). */
  "validated",
  /** Validation rejected the input, or could not finish (`data`: code, error_count, errors: the first 10). */
  "validation_failed",
  /** An agent claimed a chunk (`data`: chunk, agent, attempt). */
  "chunk_claimed",
  /** A chunk was handed back to the queue to run again (`data`: chunk, agent, reason: released, failed or unstorable). */
  "chunk_retried",
  /** The rescuer took back a chunk whose lease lapsed (`data`: chunk, agent). */
  "lease_lost",
  /** The engine was unreachable; the chunk waits for it (`data`: chunk, agent). */
  "engine_outage",
  /** A chunk failed too many times, or holds results Postgres refused; its requests are failed unsent (`data`: chunk, failures, code). */
  "poison_chunk",
  /** A part of the output object was uploaded (`data`: part, chunks, first_chunk, bytes). */
  "output_part_uploaded",
  /** No chunk is left to run; results are being stitched (`data`: completed, failed; expired when it expired). Written by the `batches_status_event` trigger. */
  "finalizing",
  /** Paused by the user (`POST /v1/batches/{id}/pause`). */
  "paused",
  /** Resumed by the user (`POST /v1/batches/{id}/resume`). */
  "resumed",
  /** The user asked for a cancel (`POST …/cancel` or `DELETE`). */
  "cancel_requested",
  /** The committed failure rate crossed `max_failure_rate`; the batch is cancelled (`data`: done, failed, rate). */
  "failure_threshold",
  /** The batch reached a final state (`data`: status, total, completed, failed; cancel_reason when set). Written by the `batches_status_event` trigger. */
  "final",
] as const;

/** A kind of timeline entry. */
export type BatchEventKind = (typeof BATCH_EVENT_KINDS)[number];

/**
 * The one home of batch and chunk state: the statuses, which of them are final, active and
 * retryable, the moves between them, the `*_at` column each one stamps, and what the database
 * does by itself when a batch reaches a final state. The `status` columns carry CHECK
 * constraints built from these lists (migration 0008_status_checks); the statements that make
 * the moves live in `queue/`, one per file, and each is named next to its move below.
 */

/**
 * A batch's status, as OpenAI's Batch object spells it. Each comment says what the state means
 * and who moves a batch out of it.
 */
export const BATCH_STATUSES = [
  /**
   * Created; its input is being checked. The API's validator (`validateBatch`, under a batch
   * lease) moves it to `in_progress` or `failed`; the API's cancel route (`cancelBatch`) moves it
   * straight to `cancelled`, since nothing has run yet.
   */
  "validating",
  /**
   * Final: the input was rejected, with line-numbered `errors`, or validation could not finish in
   * VALIDATION_MAX_ATTEMPTS claims (`validation_failed`): nothing ran, no results exist. Or its
   * results could not be published, Postgres refusing them each time (`finalize_failed`). Or
   * (`input_changed`) its object was replaced after validation and the runners stopped reading
   * it. No results are published.
   */
  "failed",
  /**
   * Its chunks are queued and run by agents. The agent completing the last chunk
   * (`completeChunk` + `markFinalizing`) moves it to `finalizing`; the rescuer (`expireBatches`)
   * moves it to `finalizing` with `expired_at` once `expires_at` passed; the API's cancel route
   * (`cancelBatch`) moves it to `cancelling`.
   */
  "in_progress",
  /**
   * No chunk is left to run (or the batch expired); results are being stitched. An agent's
   * finalizer (`publishBatch`) moves it to `completed`, or to `expired` when `expired_at` is set.
   */
  "finalizing",
  /** Final: every request ran and the results were published. */
  "completed",
  /**
   * Final: the completion window passed first. Partial results were published; each request
   * never committed has a `batch_expired` error line.
   */
  "expired",
  /**
   * A cancel was asked for while the batch ran: queued chunks are closed, running ones stop at
   * their next heartbeat. An agent's finalizer (`publishBatch`) moves it to `cancelled` once no
   * chunk holds a live lease.
   */
  "cancelling",
  /** Final: cancelled; whatever had completed was published (an empty output when nothing had). */
  "cancelled",
] as const;

/** A batch's status. */
export type BatchStatus = (typeof BATCH_STATUSES)[number];

/** A chunk's status: a chunk is the unit of work an agent claims (a run of input lines). */
export const CHUNK_STATUSES = [
  /** Waiting to be claimed (`claimChunk`), or closed by a cancel or expiry (`cancelBatch`, `expireBatches`, `sealCancelledChunks`). */
  "queued",
  /**
   * Held by one agent under a fenced lease. Its runner moves it to `done` (`completeChunk`, or
   * `giveUpUnstorableChunk` when Postgres stores none of its results), hands it
   * back to `queued` (`releaseChunk`), or closes it on a cancel (`closeCancelledChunk`); the rescuer
   * returns a lapsed lease to `queued` (`rescueExpiredChunks`); the finalizer of a cancelled or
   * expired batch closes it (`sealCancelledChunks`).
   */
  "leased",
  /** Final: every request of the chunk is committed. */
  "done",
  /** Final: closed by a cancel or expiry; its uncommitted requests never run. */
  "cancelled",
] as const;

/** A chunk's status. */
export type ChunkStatus = (typeof CHUNK_STATUSES)[number];

/** Statuses a batch never leaves; the `batch_reached_final_state` trigger fires on entering them. */
export const FINAL_BATCH_STATUSES = ["failed", "completed", "expired", "cancelled"] as const satisfies readonly BatchStatus[];
export type FinalBatchStatus = (typeof FINAL_BATCH_STATUSES)[number];

/** Statuses that count against MAX_ACTIVE_BATCHES and keep a batch's input file in use: every one not final. */
export const ACTIVE_BATCH_STATUSES = ["validating", "in_progress", "finalizing", "cancelling"] as const satisfies readonly BatchStatus[];
export type ActiveBatchStatus = (typeof ACTIVE_BATCH_STATUSES)[number];

/**
 * The final statuses a finalizer publishes results for (output files, manifest): every final
 * one but `failed`, which never ran. Only these can have segments left behind by a crash.
 */
export const PUBLISHED_BATCH_STATUSES = ["completed", "cancelled", "expired"] as const satisfies readonly FinalBatchStatus[];
export type PublishedBatchStatus = (typeof PUBLISHED_BATCH_STATUSES)[number];

/**
 * Statuses `POST /v1/batches/{id}/retry` accepts: a batch that ran and published, so its failed
 * requests are recorded. A `failed` batch never ran; an unfinished one may still fail more.
 */
export const RETRYABLE_BATCH_STATUSES = PUBLISHED_BATCH_STATUSES;
export type RetryableBatchStatus = (typeof RETRYABLE_BATCH_STATUSES)[number];

/** Statuses the API's cancel route moves out of (`cancelBatch`): to `cancelled` from `validating`, else to `cancelling`. */
export const CANCELLABLE_BATCH_STATUSES = ["validating", "in_progress"] as const satisfies readonly ActiveBatchStatus[];
export type CancellableBatchStatus = (typeof CANCELLABLE_BATCH_STATUSES)[number];

/**
 * Statuses in which a finished chunk's output still becomes a part of the batch's output upload
 * (agent `parts/`): the batch runs, or its last chunk just moved it to finalizing. A cancelling
 * batch's finalizer publishes from whatever parts and segments exist, so none are started for it.
 */
/** Statuses a finalizer claims a batch in (`claimBatchWork`) and publishes it from. */
export const FINALIZABLE_BATCH_STATUSES = ["finalizing", "cancelling"] as const satisfies readonly ActiveBatchStatus[];

export const PART_BUILDING_BATCH_STATUSES = ["in_progress", "finalizing"] as const satisfies readonly ActiveBatchStatus[];

/** Whether `status` is a batch status a batch never leaves. */
export function isFinalBatchStatus(status: string): status is FinalBatchStatus {
  return (FINAL_BATCH_STATUSES as readonly string[]).includes(status);
}

/** Whether `status` counts a batch as active (against MAX_ACTIVE_BATCHES). */
export function isActiveBatchStatus(status: string): status is ActiveBatchStatus {
  return (ACTIVE_BATCH_STATUSES as readonly string[]).includes(status);
}

/** Whether a batch in `status` has published results. */
export function isPublishedBatchStatus(status: string): status is PublishedBatchStatus {
  return (PUBLISHED_BATCH_STATUSES as readonly string[]).includes(status);
}

/** Whether a batch in `status` can be retried. */
export function isRetryableBatchStatus(status: string): status is RetryableBatchStatus {
  return (RETRYABLE_BATCH_STATUSES as readonly string[]).includes(status);
}

/** Whether a cancel moves a batch in `status` (rather than finding it final, or cancelling or finalizing already). */
export function isCancellableBatchStatus(status: string): status is CancellableBatchStatus {
  return (CANCELLABLE_BATCH_STATUSES as readonly string[]).includes(status);
}

/** Whether `status` is a known batch status. */
export function isBatchStatus(status: string): status is BatchStatus {
  return (BATCH_STATUSES as readonly string[]).includes(status);
}

/**
 * Every move a batch's status makes, and the statement that makes it. No other move exists:
 * `transitionBatch` refuses one that is not listed here.
 */
export const BATCH_TRANSITIONS = {
  /** `validateBatch` (to `in_progress` or `failed`), `cancelBatch` (to `cancelled`). */
  validating: ["in_progress", "failed", "cancelled"],
  failed: [],
  /** `markFinalizing` (last chunk done), `expireBatches` (window passed), `cancelBatch`, `failChangedInput` (input replaced since validation). */
  in_progress: ["finalizing", "cancelling", "failed"],
  /**
   * `publishBatch`: `expired` when `expired_at` was set by `expireBatches`, else `completed`; the
   * finalizer (`transitionBatch`) to `failed` when Postgres refused its publish past FINALIZE_MAX_ATTEMPTS,
   * or when an expired batch's input was replaced since validation (`input_changed`).
   */
  finalizing: ["completed", "expired", "failed"],
  completed: [],
  expired: [],
  /** `publishBatch`; the finalizer to `failed`, as from `finalizing`. */
  cancelling: ["cancelled", "failed"],
  cancelled: [],
} as const satisfies { readonly [S in BatchStatus]: readonly BatchStatus[] };

/** Every move a chunk's status makes (see the comments of `CHUNK_STATUSES` for the statements). */
export const CHUNK_TRANSITIONS = {
  queued: ["leased", "cancelled"],
  leased: ["queued", "done", "cancelled"],
  done: [],
  cancelled: [],
} as const satisfies { readonly [S in ChunkStatus]: readonly ChunkStatus[] };

/** Whether a batch may move from `from` to `to`. */
export function canTransitionBatch(from: BatchStatus, to: BatchStatus): boolean {
  return (BATCH_TRANSITIONS[from] as readonly BatchStatus[]).includes(to);
}

/** The `batches` columns that record when a batch entered a status. */
export type BatchTimestampColumn = `${Exclude<BatchStatus, "validating">}_at`;

/**
 * The column recording when a batch entered each status. `validating` has none: a batch is
 * created validating, and `created_at` says when. Two moves stamp a second column besides their
 * own: `expireBatches` sets `expired_at` with `finalizing_at` (the moment the window passed,
 * which the later move to `expired` keeps), and `cancelBatch` sets `cancelling_at` with
 * `cancelled_at` when it cancels a batch still validating.
 */
export const BATCH_STATUS_TIMESTAMPS = {
  validating: null,
  failed: "failed_at",
  in_progress: "in_progress_at",
  finalizing: "finalizing_at",
  completed: "completed_at",
  expired: "expired_at",
  cancelling: "cancelling_at",
  cancelled: "cancelled_at",
} as const satisfies { readonly [S in BatchStatus]: BatchTimestampColumn | null };

/** The chunk column recording when a chunk entered each status; only `done` has one. */
export const CHUNK_STATUS_TIMESTAMPS = {
  queued: null,
  leased: null,
  done: "done_at",
  cancelled: null,
} as const satisfies { readonly [S in ChunkStatus]: string | null };

/**
 * The column a move into `to` stamps with the current time, or null. That is the status's own
 * column, except for `expired`: its `expired_at` was stamped when the batch expired, and is kept.
 */
export function transitionTimestamp(to: BatchStatus): BatchTimestampColumn | null {
  return to === "expired" ? null : BATCH_STATUS_TIMESTAMPS[to];
}

/** Where the database reacts by itself to a batch entering a final status. */
export const FINAL_STATE_TRIGGER = {
  table: "batches",
  trigger: "batches_final_state",
  function: "batch_reached_final_state",
  /** The migration that defines both (AFTER UPDATE OF status, when the status changed to a final one). */
  migration: "0004_openai_parity",
  /** The statuses it fires on: exactly the final ones. */
  statuses: FINAL_BATCH_STATUSES,
} as const;

/**
 * What the `batch_reached_final_state` trigger writes, inside the very transaction that commits
 * the final status (so none of it can be lost, nor precede a move that rolled back). No
 * TypeScript writes these: a statement that moves a batch to a final status gets them all.
 */
export const FINAL_STATE_SIDE_EFFECTS = [
  {
    name: "webhook_event",
    writes: "webhook_events",
    when: "every final status",
    what: "one outbox row of type `batch.<status>`, fanned out to the webhook endpoints later",
  },
  {
    name: "output_files_expiry",
    writes: "files.expires_at",
    when: "the batch has `output_expires_after_seconds`",
    what: "its output and error files expire that long after the batch's `created_at`",
  },
  {
    name: "model_throughput",
    writes: "model_throughput",
    when: "`completed`, with a model, `in_progress_at` and `finalizing_at`",
    what: "the model's moving average of requests and tokens per second over in_progress_at..finalizing_at",
  },
] as const;

import {
  batchProgress,
  batchSegments,
  claimBatchWork,
  emptyProgress,
  FINALIZABLE_BATCH_STATUSES,
  holdBatchLease,
  InputChanged,
  inputChanged,
  isPermanentDbError,
  keys,
  LeaseLost,
  openAIUsage,
  publishBatch,
  putObject,
  saveStitchUpload,
  sealCancelledChunks,
  stitch,
  storableText,
  transitionBatch,
  type BatchRow,
  type Bucket,
  type Db,
  type Logger,
  type SegmentKind,
  type StitchResult,
} from "@barge/core";
import { abortLeftoverUploads, assembleFromChunkParts } from "./assemble-parts.js";
import { writeExpiredLines } from "./expired-lines.js";
import { removeSegments } from "../maintenance/janitor.js";

export interface FinalizerDeps extends Bucket {
  db: Db;
  log: Logger;
  leaseSeconds: number;
  /** Lines per segment of the `batch_expired` lines the finalizer writes itself (SEGMENT_MAX_LINES). */
  segmentMaxLines: number;
  /**
   * Claims of a batch (FINALIZE_MAX_ATTEMPTS) after which a permanent Postgres error fails it as
   * `finalize_failed`; without it such an error is retried like any other.
   */
  maxAttempts?: number;
}

/** The final state a finalizer reaches: the one it publishes, or `failed` when Postgres kept refusing it. */
export type FinalStatus = "completed" | "cancelled" | "expired" | "failed";

/** Where each stitched output lives in `batches.stitch_state` and in the file ids. */
const OUTPUTS = {
  output: { state: "output", fileSuffix: "o", fileName: "output" },
  error: { state: "errors", fileSuffix: "e", fileName: "error" },
} as const satisfies Record<SegmentKind, unknown>;

/**
 * The output file ids of a batch, derived from its id so that a finalizer re-run after a crash
 * inserts the very same rows (and `ON CONFLICT DO NOTHING` makes that a no-op).
 */
export function resultFileId(batchId: string, kind: SegmentKind): string {
  return `file-${batchId.replace(/^batch_/, "")}${OUTPUTS[kind].fileSuffix}`;
}

/**
 * Claims one batch that is ready to stitch (finalizing or cancelling, with no live chunk lease),
 * optionally a given one, and finalizes it. Returns its final status, or undefined when there
 * was nothing to claim.
 */
export async function finalizeNext(deps: FinalizerDeps, workerId: string, batchId?: string): Promise<FinalStatus | undefined> {
  const batch = await claimBatchWork(deps.db, {
    workerId,
    kinds: [...FINALIZABLE_BATCH_STATUSES],
    leaseSeconds: deps.leaseSeconds,
    ...(batchId === undefined ? {} : { batchId }),
  });
  return batch ? finalizeBatch(deps, batch) : undefined;
}

/**
 * Stitches a claimed batch's committed segments, in (chunk, seq) order, into its output and
 * error objects (the output, when its chunks uploaded it as parts while the batch ran, by
 * completing that upload; see assemble-parts.ts), writes the manifest, publishes the file rows and the final state in one fenced
 * transaction, and only then deletes the segments. Every step before the transition can be
 * repeated, so a crashed finalizer is simply redone by the next claim; segments left behind by
 * a crash after the transition are the janitor's.
 *
 * A batch `finalizing` with `expired_at` set expired mid-run: its unfinished chunks are sealed
 * and every request none of them committed gets a `batch_expired` error line before the stitch.
 *
 * A cancelled batch always gets an output object, empty when nothing completed (OpenAI omits
 * it then): clients and the manifest can then rely on `output_file_id` for every finished batch.
 */
export async function finalizeBatch(deps: FinalizerDeps, batch: BatchRow): Promise<FinalStatus> {
  if (!(FINALIZABLE_BATCH_STATUSES as readonly string[]).includes(batch.status)) throw new Error(`batch ${batch.id} is ${batch.status}, not stitchable`);
  try {
    return await publishResults(deps, batch);
  } catch (err) {
    if (err instanceof InputChanged) return failChangedInputAtExpiry(deps, batch, err);
    // Postgres refusing the batch's own data fails the same way on every claim: past the bound the batch ends.
    if (!isPermanentDbError(err) || deps.maxAttempts === undefined || batch.finalize_attempts < deps.maxAttempts) throw err;
    return failFinalize(deps, batch, err);
  }
}

/** Fails a batch whose finalize Postgres refused on its last allowed attempt, with that error as its `errors`. */
async function failFinalize(deps: FinalizerDeps, batch: BatchRow, err: unknown): Promise<"failed"> {
  const message = storableText(err instanceof Error ? err.message : String(err));
  const failed = await transitionBatch(deps.db, {
    batchId: batch.id,
    fence: batch.worker_fence,
    from: [batch.status],
    to: "failed",
    set: { errors: JSON.stringify([{ code: "finalize_failed", message, line: null, param: null }]) },
  });
  if (!failed) throw new LeaseLost(`failing ${batch.id}`);
  deps.log.error({ err, batch: batch.id, attempts: batch.finalize_attempts }, "finalize refused by Postgres on its last attempt; the batch failed");
  return "failed";
}

/**
 * Fails an expired batch whose input object was replaced since validation, found while writing its
 * `batch_expired` lines: as when a runner finds it, nothing is published, since the lines would
 * name requests that were never validated. Its chunks were sealed already.
 */
async function failChangedInputAtExpiry(deps: FinalizerDeps, batch: BatchRow, err: InputChanged): Promise<"failed"> {
  const failed = await transitionBatch(deps.db, {
    batchId: batch.id,
    fence: batch.worker_fence,
    from: [batch.status],
    to: "failed",
    set: { errors: JSON.stringify([inputChanged(batch)]) },
  });
  if (!failed) throw new LeaseLost(`failing ${batch.id}`);
  deps.log.warn({ key: err.key, batch: batch.id }, "input object changed since validation; expired batch failed");
  return "failed";
}

/** The finalize proper, as `finalizeBatch` describes it. */
async function publishResults(deps: FinalizerDeps, batch: BatchRow): Promise<FinalStatus> {
  const from = batch.status;
  const status: FinalStatus = from === "cancelling" ? "cancelled" : batch.expired_at !== null ? "expired" : "completed";
  const fence = batch.worker_fence;
  const log = deps.log.child({ batch: batch.id, fence });
  const lease = holdBatchLease(deps, { batchId: batch.id, fence }, { onRenewFailed: (err) => log.warn({ err }, "batch lease renewal failed; retrying") });
  try {
    if (status !== "completed") await sealCancelledChunks(deps.db, { batchId: batch.id, fence });
    if (status === "expired") {
      const expired = await writeExpiredLines(deps, batch, fence);
      if (expired > 0) log.info({ expired }, "wrote batch_expired lines for the unfinished requests");
    }
    const segments = await batchSegments(deps.db, batch.id);

    const stitchKind = async (kind: SegmentKind, destKey: string): Promise<{ result: StitchResult; lines: number } | undefined> => {
      const mine = segments.filter((s) => s.kind === kind);
      if (kind === "error" && mine.length === 0) return undefined;
      const lines = mine.reduce((n, s) => n + s.lines, 0);
      if (kind === "output") {
        // The chunks' outputs were uploaded as parts while the batch ran: completing them moves no bytes.
        const assembled = await assembleFromChunkParts(deps, {
          batchId: batch.id,
          destKey,
          segments: mine.map((s) => ({ chunk: s.chunk_idx, key: s.s3_key, size: s.bytes })),
        });
        if (assembled.result) {
          log.info({ parts: assembled.result.parts, rebuilt: assembled.rebuiltParts }, "output completed from chunk parts");
          return { result: assembled.result, lines };
        }
        log.info({ reason: assembled.reason }, "stitching the output from its segments");
      }
      const state = OUTPUTS[kind].state;
      const previous = batch.stitch_state?.[state];
      const result = await stitch(deps, {
        segments: mine.map((s) => ({ key: s.s3_key, size: s.bytes })),
        destKey,
        contentType: "application/jsonl",
        ...(previous ? { uploadId: previous } : {}),
        keepUploadOnError: true,
        onUploadId: async (uploadId) => {
          if (!(await saveStitchUpload(deps.db, { batchId: batch.id, fence, name: state, uploadId }))) {
            throw new LeaseLost(`stitching ${batch.id}`);
          }
        },
      });
      return { result, lines };
    };
    const outputKey = keys.output(batch.tenant, batch.id, batch.results_prefix);
    const errorKey = keys.errors(batch.tenant, batch.id, batch.results_prefix);
    const output = (await stitchKind("output", outputKey))!;
    const errors = await stitchKind("error", errorKey);
    if (lease.lost) throw new LeaseLost(`finalizing ${batch.id}`);

    const p = (await batchProgress(deps.db, [batch.id])).get(batch.id) ?? emptyProgress;
    const manifest = {
      batch_id: batch.id,
      status,
      request_counts: { total: batch.total_requests, completed: p.completed, failed: p.failed },
      usage: openAIUsage(p),
      output: { key: outputKey, bytes: output.result.bytes, etag: output.result.etag, lines: output.lines },
      errors: errors ? { key: errorKey, bytes: errors.result.bytes, etag: errors.result.etag, lines: errors.lines } : null,
      segments: segments.length,
      created_at: Math.floor(Date.now() / 1000),
    };
    await putObject(deps, keys.manifest(batch.tenant, batch.id, batch.results_prefix), JSON.stringify(manifest, null, 2), "application/json");

    const outputFileId = resultFileId(batch.id, "output");
    const errorFileId = errors ? resultFileId(batch.id, "error") : null;
    const fileRow = (kind: SegmentKind, id: string, key: string, bytes: number) => ({
      id,
      tenant: batch.tenant,
      purpose: "batch_output" as const,
      filename: `${batch.id}_${OUTPUTS[kind].fileName}.jsonl`,
      bytes,
      status: "processed" as const,
      s3_key: key,
    });
    const published = await publishBatch(deps.db, {
      batchId: batch.id,
      fence,
      from,
      to: status,
      files: [
        fileRow("output", outputFileId, outputKey, output.result.bytes),
        ...(errors && errorFileId ? [fileRow("error", errorFileId, errorKey, errors.result.bytes)] : []),
      ],
      outputFileId,
      errorFileId,
      outputKey,
      errorKey: errors ? errorKey : null,
    });
    // A finalizer that lost the batch published nothing, not even the file rows.
    if (!published) throw new LeaseLost(`finalizing ${batch.id}`);
    log.info({ status, completed: p.completed, failed: p.failed, segments: segments.length }, "batch finalized");

    await abortLeftoverUploads(deps, outputKey);
    // Only now that the batch points at the stitched objects may the segments go.
    await removeSegments(deps, batch.id);
    return status;
  } finally {
    lease.stop();
  }
}

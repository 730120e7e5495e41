import type { Db } from "../db/connect.js";
import type { BatchErrorEntry, BatchRow } from "../db/schema.js";
import { reuseInputCheck } from "../domain/input-check.js";
import { storableText } from "../domain/storable-text.js";
import { validateBatchInput, type ValidationLimits } from "../domain/validate.js";
import { LeaseLost } from "../errors.js";
import type { Logger } from "../log.js";
import { batchStartSeconds } from "../queue/batch-start-seconds.js";
import { enqueueChunks } from "../queue/enqueue-chunks.js";
import { findFile } from "../queue/find-file.js";
import { recordBatchEvent } from "../queue/record-batch-event.js";
import { transitionBatch } from "../queue/transition-batch.js";
import { readLineBlocks } from "../storage/lines.js";
import { getObjectStream, headObject, type Bucket } from "../storage/objects.js";
import { isPreconditionFailed } from "../storage/s3-errors.js";
import { holdBatchLease } from "./batch-lease.js";

export interface ValidateDeps extends Bucket {
  db: Db;
  limits: ValidationLimits;
  leaseSeconds: number;
  log: Logger;
  /** Claims a batch may spend validating before it fails as `validation_failed` (VALIDATION_MAX_ATTEMPTS). */
  maxAttempts: number;
}

/**
 * Validates a claimed `validating` batch by streaming its input once (or takes the upload check's
 * record of that same object), then either fails it with line-numbered errors or enqueues its
 * chunks and starts it, in one fenced transaction.
 *
 * Validation that keeps failing (an error Postgres gives for this batch's data every time, a
 * validator that dies on its input) must not leave the batch validating forever, counting
 * against MAX_ACTIVE_BATCHES: the claim counts attempts, the last one allowed fails the batch
 * with the error it met, and a claim past the bound (the last attempt died) fails it at once.
 */
export async function validateBatch(deps: ValidateDeps, batch: BatchRow): Promise<"in_progress" | "failed"> {
  if (batch.validation_attempts > deps.maxAttempts) {
    return fail(deps, batch, [validationFailed(`Validation did not finish in ${deps.maxAttempts} attempts.`)]);
  }
  try {
    return await validateOnce(deps, batch);
  } catch (err) {
    if (err instanceof LeaseLost || batch.validation_attempts < deps.maxAttempts) throw err;
    deps.log.error({ err, batch: batch.id, attempts: batch.validation_attempts }, "validation failed on its last attempt; failing the batch");
    return fail(deps, batch, [validationFailed(err instanceof Error ? err.message : String(err))]);
  }
}

function validationFailed(message: string): NonNullable<BatchRow["errors"]>[number] {
  return { code: "validation_failed", message, line: null, param: null };
}

async function validateOnce(deps: ValidateDeps, batch: BatchRow): Promise<"in_progress" | "failed"> {
  const fence = batch.worker_fence;
  // A lost lease needs no check here: the fenced transition below refuses to move the batch.
  const lease = holdBatchLease(deps, { batchId: batch.id, fence });
  try {
    const file = await findFile(deps.db, batch.input_file_id);
    const head = file ? await headObject(deps, file.s3_key) : undefined;
    if (!file || !head) {
      return await fail(deps, batch, [{ code: "file_not_found", message: `Input file '${batch.input_file_id}' has no content.`, line: null, param: "input_file_id" }]);
    }
    // The object the file row was written with, or (older rows, no ETag kept) the one there now:
    // every later read of the input asks S3 for exactly this one.
    const pin = file.etag ?? head.etag;
    if (head.etag !== pin) return await fail(deps, batch, [inputChanged(batch)]);
    // A presigned upload was validated when it was completed; that pass stands if the object is the one it read.
    let result = reuseInputCheck(file.input_check, head, batch.endpoint, deps.limits);
    try {
      result ??= await validateBatchInput(
        readLineBlocks(await getObjectStream(deps, file.s3_key, undefined, { ifMatch: pin }), { maxLineBytes: deps.limits.maxLineBytes }),
        head.bytes,
        batch.endpoint,
        deps.limits,
        { anyModel: batch.model_override },
      );
    } catch (err) {
      if (isPreconditionFailed(err)) return await fail(deps, batch, [inputChanged(batch)]);
      throw err;
    }
    if (result.errors.length > 0) return await fail(deps, batch, result.errors);
    // A batch created with a model it does not override with (a retry) only accepts files naming
    // that model; every line names the same one by now, so the first request is the first offender.
    if (batch.model !== null && !batch.model_override && result.model !== batch.model) {
      return await fail(deps, batch, [{
        code: "model_mismatch",
        message: `The model '${result.model}' differs from the batch's model '${batch.model}'.`,
        line: result.chunks[0]?.startLine ?? null,
        param: "body.model",
      }]);
    }

    // An overriding batch's model came with it; otherwise every line named the same one.
    const model = batch.model_override && batch.model !== null ? batch.model : result.model!;
    const ok = await deps.db.transaction().execute(async (tx) => {
      const moved = await transitionBatch(tx, {
        batchId: batch.id,
        fence,
        from: ["validating"],
        to: "in_progress",
        set: { model, total_requests: result.requests, input_etag: pin },
      });
      if (moved) {
        await enqueueChunks(tx, batch, model, result.chunks);
        await recordBatchEvent(tx, batch.id, "validated", {
          lines: result.requests,
          chunks: result.chunks.length,
          seconds: await batchStartSeconds(tx, batch.id),
        });
      }
      return moved;
    });
    if (!ok) throw new LeaseLost(`validation of ${batch.id}`);
    deps.log.info({ batch: batch.id, requests: result.requests, chunks: result.chunks.length, model }, "batch validated");
    return "in_progress";
  } finally {
    lease.stop();
  }
}

/** The error of a batch whose input object is no longer the one its file row was written with. */
export function inputChanged(batch: Pick<BatchRow, "input_file_id">): BatchErrorEntry {
  return {
    code: "input_changed",
    message: `The content of input file '${batch.input_file_id}' changed after it was stored, so none of its requests were run.`,
    line: null,
    param: "input_file_id",
  };
}

/** Errors a `validation_failed` timeline entry carries: the first ones, as the batch's `errors` has them all. */
const EVENT_ERRORS = 10;

async function fail(deps: ValidateDeps, batch: BatchRow, errors: NonNullable<BatchRow["errors"]>): Promise<"failed"> {
  // Messages may echo input (a model name) or an exception: Postgres refuses U+0000 in jsonb too.
  const stored = errors.map((e) => ({ ...e, message: storableText(e.message) }));
  await deps.db.transaction().execute(async (tx) => {
    // Written first: the move fires the trigger that writes `final`, which comes after it.
    await recordBatchEvent(tx, batch.id, "validation_failed", {
      code: stored[0]?.code ?? "validation_failed",
      error_count: stored.length,
      errors: stored.slice(0, EVENT_ERRORS),
    });
    const moved = await transitionBatch(tx, {
      batchId: batch.id,
      fence: batch.worker_fence,
      from: ["validating"],
      to: "failed",
      set: { errors: JSON.stringify(stored) },
    });
    // Thrown inside, so the entry rolls back with the move that matched nothing.
    if (!moved) throw new LeaseLost(`validation of ${batch.id}`);
  });
  deps.log.info({ batch: batch.id, errors: errors.length }, "batch failed validation");
  return "failed";
}

import { Hono, type Context } from "hono";
import { Readable } from "node:stream";
import { z } from "zod";
import { Conflict, deleteObject, getObjectStream, isBlankLine, isPreconditionFailed, isRetryableBatchStatus, keys, newId, NotFound, readLines, uploadStream, type BatchRow, type RequestErrorRow } from "@barge/core";
import { tenantOf } from "../auth.js";
import type { ApiDeps, AppEnv } from "../deps.js";
import { presentBatch } from "../present.js";
import { findBatch, insertBatch } from "../store/batches.js";
import { findFile, insertFile } from "../store/files.js";
import { chunksWithErrors, failedIndexes, hasRequestErrors, listRequestErrors } from "../store/request-errors.js";
import { knownId, safeText } from "../params.js";
import { admitNewBatch, rateLimit, tenantLimits } from "../tenant-limits.js";
import { readQuery } from "../validation.js";

/** States whose failed requests are final, so a retry cannot race the original. */

export const errorsListQuery = z.object({
  after: safeText.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** One failed request as the errors listing shows it. */
function toRequestError(r: RequestErrorRow) {
  return {
    object: "batch.request_error" as const,
    custom_id: r.custom_id,
    code: r.code,
    message: r.message,
    attempts: r.attempts,
    status_code: r.status_code,
    line: r.line,
  };
}

/**
 * A batch's failed requests: `GET /:id/errors` (or the seeds' `/:id/failed`) lists them in input
 * order (OpenAI's list shape, paged by custom_id), and `POST /:id/retry` re-runs exactly them as a new batch.
 */
export function batchErrorsRoutes(deps: ApiDeps & { wake?: () => void }) {
  const app = new Hono<AppEnv>();

  const batchOf = async (tenant: string, id: string): Promise<BatchRow> => {
    const batch = await findBatch(deps.db, tenant, knownId(id, "batch_", "batch", "batch_id"));
    if (!batch) throw new NotFound("batch", id, "batch_id");
    return batch;
  };

  const listErrors = async (c: Context<AppEnv>) => {
    const batch = await batchOf(tenantOf(c), c.req.param("id") ?? "");
    const q = readQuery(c, errorsListQuery);
    const { rows, hasMore } = await listRequestErrors(deps.db, batch.id, q);
    const data = rows.map(toRequestError);
    return c.json({
      object: "list" as const,
      data,
      first_id: data[0]?.custom_id ?? null,
      last_id: data[data.length - 1]?.custom_id ?? null,
      has_more: hasMore,
    });
  };
  app.get("/:id/errors", listErrors);
  // The seeds' name for the same list.
  app.get("/:id/failed", listErrors);

  // A retry creates a batch, so it counts against the tenant's batch creates.
  app.post("/:id/retry", rateLimit(deps, () => ["batch_creates_per_minute"]), async (c) => {
    const tenant = tenantOf(c);
    const old = await batchOf(tenant, c.req.param("id"));
    if (!isRetryableBatchStatus(old.status)) {
      throw new Conflict(`Batch is ${old.status}; only a completed, cancelled or expired batch can be retried.`, "batch_not_finished");
    }
    if (!(await hasRequestErrors(deps.db, old.id))) throw new Conflict(`Batch '${old.id}' has no failed requests to retry.`, "no_failed_requests");
    const input = await findFile(deps.db, tenant, old.input_file_id);
    if (!input) throw new Conflict(`The input file '${old.input_file_id}' of batch '${old.id}' was deleted, so its requests cannot be re-read.`, "input_file_deleted");

    // Refuse before the retry input is written; the check that counts is repeated in the transaction.
    await deps.db.transaction().execute(async (tx) => admitNewBatch(deps, tx, tenant, await tenantLimits(deps, tx, tenant)));
    const fileId = newId("file-");
    const key = keys.input(tenant, fileId);
    let bytes = 0;
    const body = async function* () {
      for await (const text of failedInputLines(deps, old.id, input.s3_key, old.input_etag)) {
        const out = `${text}\n`;
        bytes += Buffer.byteLength(out);
        yield out;
      }
    };
    const etag = await uploadStream(deps, key, Readable.from(body()), { contentType: "application/jsonl" });

    // Set once the rows are written: a failure after that (the commit itself) may have committed them.
    let written = false;
    const row = await deps.db.transaction().execute(async (tx) => {
      const limits = await tenantLimits(deps, tx, tenant);
      await admitNewBatch(deps, tx, tenant, limits);
      await insertFile(tx, { id: fileId, tenant, purpose: "batch", filename: `${old.id}_retry.jsonl`, bytes, status: "processed", s3_key: key, etag });
      const created = new Date();
      const batch = await insertBatch(tx, {
        id: newId("batch_"),
        tenant,
        endpoint: old.endpoint,
        model: old.model,
        // The failed lines still carry the placeholder models an overriding batch replaced.
        model_override: old.model_override,
        input_file_id: fileId,
        completion_window: old.completion_window,
        metadata: old.metadata,
        // Re-run at most at the tenant's cap, which may have been lowered since.
        priority: limits.max_priority === null ? old.priority : Math.min(old.priority, limits.max_priority),
        created_at: created,
        expires_at: new Date(created.getTime() + (old.expires_at.getTime() - old.created_at.getTime())),
        output_expires_after_seconds: old.output_expires_after_seconds,
        webhook_url: old.webhook_url,
        retry_of: old.id,
      });
      written = true;
      return batch;
    }).catch(async (err: unknown) => {
      // Refused (a create won the last slot meanwhile) or rolled back: no row will ever name the object.
      if (!written) await deleteObject(deps, key).catch((e: unknown) => deps.log.warn({ err: e, key }, "orphaned a refused retry's input object"));
      throw err;
    });
    deps.wake?.();
    return c.json(await presentBatch(deps, row));
  });

  return app;
}

/**
 * The input lines of a batch's failed requests, in input order. Only the chunks holding failures
 * are read (one Range GET each), and each chunk's failed indexes are looked up on their own, so
 * memory holds one chunk's index list at most however large the batch. Reads are pinned to the
 * ETag the batch was validated against (when it has one).
 */
async function* failedInputLines(deps: ApiDeps, batchId: string, inputKey: string, etag: string | null): AsyncGenerator<string> {
  for (const chunk of await chunksWithErrors(deps.db, batchId)) {
    const wanted = await failedIndexes(deps.db, batchId, chunk.request_start, chunk.request_start + chunk.request_count);
    let next = 0;
    let index = chunk.request_start;
    const body = await getObjectStream(deps, inputKey, { start: chunk.start_offset, end: chunk.end_offset }, { ifMatch: etag }).catch((err: unknown) => {
      if (isPreconditionFailed(err)) throw new Conflict(`The input file of batch '${batchId}' changed after the batch was validated, so its requests cannot be re-read.`, "input_changed");
      throw err;
    });
    for await (const line of readLines(body, { offset: chunk.start_offset, lineNo: chunk.start_line }, { maxLineBytes: deps.config.MAX_LINE_BYTES })) {
      // Leaving the loop early destroys the rest of the range's stream.
      if (next === wanted.length) break;
      // Blank lines were skipped by validation too, so request numbering matches the chunk index.
      if (isBlankLine(line.text)) continue;
      if (index++ === wanted[next]) {
        next++;
        yield line.text;
      }
    }
  }
}

import { Hono, type Context } from "hono";
import { z } from "zod";
import {
  BATCH_STATUSES,
  Conflict,
  InvalidRequest,
  isCancellableBatchStatus,
  isBatchStatus,
  isFinalBatchStatus,
  isStorableText,
  newId,
  NotFound,
  SUPPORTED_ENDPOINTS,
  type BatchRow,
  type BatchStatus,
  type Db,
  type FileRow,
} from "@barge/core";
import { tenantOf } from "../auth.js";
import type { ApiDeps, AppEnv } from "../deps.js";
import { failureThreshold, formFailureThresholdFields, maxFailureRate, minRequests } from "../failure-threshold-params.js";
import { expiresAfter, formExpiresAfterFields, formExpirySeconds, knownId, safeText, UNSAFE_TEXT } from "../params.js";
import { listPage, presentBatch, presentBatches, presentBatchView } from "../present.js";
import { withReceivedFile } from "../receive-file.js";
import { cancelBatchRow, findBatch, findBatchView, insertBatch, listBatches } from "../store/batches.js";
import { insertFile, lockFileForUse } from "../store/files.js";
import { admitNewBatch, cappedPriority, rateLimit, tenantLimits } from "../tenant-limits.js";
import { parseWith, readJson, readQuery } from "../validation.js";
import { internalDestination } from "../webhooks/destination.js";

const COMPLETION_WINDOW_MS = 24 * 3600 * 1000;

const endpoint = z.enum(SUPPORTED_ENDPOINTS, { error: `supported values are ${SUPPORTED_ENDPOINTS.map((e) => `'${e}'`).join(", ")}` });
const completionWindow = z.literal("24h", { error: "the only supported value is '24h'" });
// Higher runs first (agents claim by priority, then age); bounded so it stays a scheduling knob.
const priority = z.number().int().min(-1000).max(1000);

/** OpenAI's metadata limits, or null when `m` keeps them. */
function metadataProblem(m: Record<string, unknown>): string | null {
  const entries = Object.entries(m);
  if (entries.length > 16) return `at most 16 key-value pairs are allowed, got ${entries.length}`;
  for (const [k, v] of entries) {
    if (k.length > 64) return "keys can be at most 64 characters long";
    if (typeof v !== "string") return "values must be strings";
    if (!isStorableText(k) || !isStorableText(v)) return `keys and values ${UNSAFE_TEXT}`;
    if (v.length > 512) return "values can be at most 512 characters long";
  }
  return null;
}

// Checked as a whole so every problem is reported with param `metadata`, as OpenAI does.
const metadata = z
  .record(z.string(), z.unknown())
  .superRefine((m, ctx) => {
    const problem = metadataProblem(m);
    if (problem) ctx.addIssue({ code: "custom", message: problem, input: m });
  })
  .transform((m) => m as Record<string, string>);

// Barge's extension: where this batch's final-state event is also sent (see the webhooks module).
const webhookUrl = z
  .url({ protocol: /^https?$/, error: "must be an http or https URL" })
  .max(2048)
  .refine(isStorableText, { error: UNSAFE_TEXT });

export const createBody = z.object({
  input_file_id: z.string().min(1),
  endpoint,
  // Barge: as the one-shot form's `model`, it replaces each line's body `model` (the dashboard's override).
  model: safeText.min(1).max(256).optional(),
  completion_window: completionWindow,
  metadata: metadata.nullish(),
  output_expires_after: expiresAfter.optional(),
  priority: priority.optional(),
  webhook_url: webhookUrl.optional(),
  max_failure_rate: maxFailureRate.optional(),
  min_requests: minRequests.optional(),
});

/** The one-shot multipart form: text fields beside the `file` part; metadata is a JSON string. */
export const oneShotFields = z.object({
  model: safeText.min(1).max(256).optional(),
  endpoint: endpoint.default("/v1/chat/completions"),
  completion_window: completionWindow.default("24h"),
  metadata: z
    .string()
    .transform((s, ctx) => {
      try {
        return JSON.parse(s) as unknown;
      } catch {
        ctx.addIssue({ code: "custom", message: "must be a JSON object", input: s });
        return z.NEVER;
      }
    })
    .pipe(metadata)
    .optional(),
  priority: z.coerce.number().pipe(priority).optional(),
  webhook_url: webhookUrl.optional(),
  // The OpenAI SDKs' spelling of a nested object in a form, as for files' `expires_after`.
  ...formExpiresAfterFields("output_expires_after"),
  ...formFailureThresholdFields,
});

/** Statuses one list filter may name: more than there are is a client mistake, not a filter. */
const MAX_STATUS_FILTER = 8;

/** The list's `status`: one status or several, comma-separated (the seeds' `status=completed,failed`). */
const statusFilter = safeText
  .transform((s, ctx): BatchStatus[] => {
    const values = s.split(",").map((v) => v.trim());
    if (values.length > MAX_STATUS_FILTER) {
      ctx.addIssue({ code: "custom", message: `at most ${MAX_STATUS_FILTER} statuses are allowed, got ${values.length}`, input: s });
      return z.NEVER;
    }
    const unknown = values.find((v) => !isBatchStatus(v));
    if (unknown !== undefined) {
      ctx.addIssue({ code: "custom", message: `'${unknown}' is not a batch status; supported values are ${BATCH_STATUSES.map((v) => `'${v}'`).join(", ")}`, input: s });
      return z.NEVER;
    }
    return [...new Set(values as BatchStatus[])];
  })
  .meta({ description: `One batch status, or up to ${MAX_STATUS_FILTER} comma-separated: ${BATCH_STATUSES.join(", ")}.` });

export const listQuery = z.object({
  after: safeText.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  status: statusFilter.optional(),
});

interface BatchParams {
  endpoint: string;
  completion_window: string;
  metadata?: Record<string, string> | null | undefined;
  priority?: number | undefined;
  model?: string | undefined;
  outputExpiresAfterSeconds?: number | undefined;
  webhookUrl?: string | undefined;
  max_failure_rate?: number | undefined;
  min_requests?: number | undefined;
}

/**
 * The batch's own webhook endpoint: the `webhook_url` field, else the metadata key of that name
 * (for clients that can only send OpenAI's fields). Refused when this deployment cannot sign, or
 * when it names an internal host and WEBHOOK_ALLOW_PRIVATE is off.
 */
function batchWebhookUrl(given: string | undefined, meta: Record<string, string> | null | undefined, config: ApiDeps["config"]): string | null {
  const fromMeta = meta?.webhook_url;
  const param = given !== undefined ? "webhook_url" : "metadata";
  const url = given ?? (fromMeta === undefined ? undefined : parseWith(webhookUrl, fromMeta));
  if (url === undefined) return null;
  if (!config.WEBHOOK_SECRET) {
    throw new InvalidRequest("Webhooks are not configured on this server (WEBHOOK_SECRET is unset), so no webhook_url can be signed.", param, "webhooks_not_configured");
  }
  const internal = config.WEBHOOK_ALLOW_PRIVATE ? null : internalDestination(url);
  if (internal !== null) {
    throw new InvalidRequest(`The webhook_url's host is internal (${internal}); this server sends batch webhooks to public addresses only.`, param, "internal_webhook_url");
  }
  return url;
}

/** OpenAI's Batches API plus the one-shot multipart create; `wake` nudges the validator. */
export function batchesRoutes(deps: ApiDeps & { wake?: () => void }) {
  const app = new Hono<AppEnv>();

  const newBatch = async (tx: Db, tenant: string, input: FileRow, p: BatchParams): Promise<BatchRow> => {
    const webhook = batchWebhookUrl(p.webhookUrl, p.metadata, deps.config);
    const limits = await tenantLimits(deps, tx, tenant);
    const priority = cappedPriority(p.priority, limits);
    await admitNewBatch(deps, tx, tenant, limits);
    const created = new Date();
    return insertBatch(tx, {
      id: newId("batch_"),
      tenant,
      endpoint: p.endpoint,
      // A model given up front (one-shot form) decides: it replaces each line's body `model`.
      model: p.model ?? null,
      model_override: p.model !== undefined,
      input_file_id: input.id,
      completion_window: p.completion_window,
      metadata: p.metadata ?? null,
      priority,
      created_at: created,
      expires_at: new Date(created.getTime() + COMPLETION_WINDOW_MS),
      output_expires_after_seconds: p.outputExpiresAfterSeconds ?? null,
      webhook_url: webhook,
      ...failureThreshold(p, p.metadata),
      retry_of: null,
    });
  };

  const isOneShot = (c: Context<AppEnv>) => (c.req.header("content-type") ?? "").toLowerCase().startsWith("multipart/form-data");

  // The one-shot form is an upload as well as a create, so it counts against both limits.
  app.post("/", rateLimit(deps, (c) => (isOneShot(c) ? ["batch_creates_per_minute", "file_uploads_per_minute"] : ["batch_creates_per_minute"])), async (c) => {
    if (!isOneShot(c)) {
      const row = await createFromFile(tenantOf(c), await readJson(c, createBody, deps.config));
      deps.wake?.();
      return c.json(await presentBatch(deps, row));
    }
    const { row, lines } = await createOneShot(c);
    deps.wake?.();
    // The seeds' one-shot answer: the Batch object plus its id as `batch_id` and the lines the upload held.
    return c.json({ ...(await presentBatch(deps, row)), batch_id: row.id, total_requests: lines });
  });

  /** The one-shot form: the file is streamed to S3, then file and batch rows land in one transaction. */
  async function createOneShot(c: Context<AppEnv>): Promise<{ row: BatchRow; lines: number }> {
    const tenant = tenantOf(c);
    // Refuse before the upload streams in; the check that counts is repeated in the transaction.
    await deps.db.transaction().execute(async (tx) => admitNewBatch(deps, tx, tenant, await tenantLimits(deps, tx, tenant)));
    return withReceivedFile(deps, c, async (f) => {
      const form = parseWith(
        oneShotFields.transform((v, ctx) => ({
          ...v,
          outputExpiresAfterSeconds: formExpirySeconds(v, "output_expires_after", ctx),
          webhookUrl: v.webhook_url,
        })),
        Object.fromEntries(f.fields),
      );
      return deps.db.transaction().execute(async (tx) => {
        const file = await insertFile(tx, {
          id: f.fileId,
          tenant,
          purpose: "batch",
          filename: f.filename,
          bytes: f.bytes,
          status: "processed",
          s3_key: f.key,
          etag: f.etag,
        });
        return { row: await newBatch(tx, tenant, file, form), lines: f.lines };
      });
    });
  }

  /** OpenAI's create: from an uploaded file, locked against deletion until the batch row exists. */
  async function createFromFile(tenant: string, body: z.output<typeof createBody>): Promise<BatchRow> {
    return deps.db.transaction().execute(async (tx) => {
      const file = await lockFileForUse(tx, tenant, knownId(body.input_file_id, "file-", "file", "input_file_id"));
      if (!file) throw new NotFound("file", body.input_file_id, "input_file_id");
      if (file.purpose !== "batch") {
        throw new InvalidRequest(`File '${file.id}' has purpose '${file.purpose}'; a batch input needs purpose 'batch'.`, "input_file_id", "invalid_file_purpose");
      }
      if (file.status === "error") {
        throw new InvalidRequest(`File '${file.id}' failed validation and cannot be used.`, "input_file_id", "invalid_file_status");
      }
      return newBatch(tx, tenant, file, { ...body, outputExpiresAfterSeconds: body.output_expires_after?.seconds, webhookUrl: body.webhook_url });
    });
  }

  app.get("/", async (c) => {
    const tenant = tenantOf(c);
    const q = readQuery(c, listQuery);
    const { rows, hasMore } = await listBatches(deps.db, tenant, q);
    return c.json(listPage(await presentBatches(deps, rows), hasMore));
  });

  app.get("/:id", async (c) => {
    const tenant = tenantOf(c);
    const id = knownId(c.req.param("id"), "batch_", "batch", "batch_id");
    const view = await findBatchView(deps.db, tenant, id);
    if (!view) throw new NotFound("batch", id, "batch_id");
    return c.json(await presentBatchView(deps, view));
  });

  /**
   * The one cancel, behind OpenAI's `POST /:id/cancel` and the seeds' `DELETE /:id`. They differ
   * only on a final batch: OpenAI's answers 409, while DELETE is idempotent and answers the batch
   * as it is, since whoever deletes wants it stopped and it is.
   */
  const cancel = (finalIsConflict: boolean) => async (c: Context<AppEnv>) => {
    const tenant = tenantOf(c);
    const id = knownId(c.req.param("id") ?? "", "batch_", "batch", "batch_id");
    const batch = await findBatch(deps.db, tenant, id);
    if (!batch) throw new NotFound("batch", id, "batch_id");
    if (finalIsConflict && isFinalBatchStatus(batch.status)) throw new Conflict(`Batch is ${batch.status} and cannot be cancelled.`, "batch_not_cancellable");
    // Cancelling or finalizing already: the cancel (or the results) are on their way, so it is returned as is.
    let after = batch;
    if (isCancellableBatchStatus(batch.status)) {
      // Undefined when the batch moved on since it was read; answer with where it is now.
      after = (await cancelBatchRow(deps.db, id)) ?? (await findBatch(deps.db, tenant, id)) ?? batch;
    }
    return c.json(await presentBatch(deps, after));
  };
  app.post("/:id/cancel", cancel(true));
  app.delete("/:id", cancel(false));

  return app;
}

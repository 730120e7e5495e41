import { Hono, type Context } from "hono";
import { z } from "zod";
import {
  Conflict,
  InvalidRequest,
  newId,
  NotFound,
  SUPPORTED_ENDPOINTS,
  type BatchRow,
  type BatchStatus,
  type Db,
  type FileRow,
} from "@barge/core";
import type { ApiDeps, AppEnv } from "../deps.js";
import { listPage, presentBatch, presentBatches } from "../present.js";
import { withReceivedFile } from "../receive-file.js";
import { cancelBatchRow, findBatch, insertBatch, listBatches } from "../store/batches.js";
import { insertFile, lockFileForUse } from "../store/files.js";
import { parseWith, readJson, readQuery } from "../validation.js";

const COMPLETION_WINDOW_MS = 24 * 3600 * 1000;
const FINAL: readonly BatchStatus[] = ["completed", "failed", "expired", "cancelled"];
const STATUSES = ["validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"] as const;

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

const createBody = z.object({
  input_file_id: z.string().min(1),
  endpoint,
  completion_window: completionWindow,
  metadata: metadata.nullish(),
  priority: priority.optional(),
});

/** The one-shot multipart form: text fields beside the `file` part; metadata is a JSON string. */
const oneShotFields = z.object({
  model: z.string().min(1).max(256).optional(),
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
});

const listQuery = z.object({
  after: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  status: z.enum(STATUSES).optional(),
});

interface BatchParams {
  endpoint: string;
  completion_window: string;
  metadata?: Record<string, string> | null | undefined;
  priority?: number | undefined;
  model?: string | undefined;
}

/** OpenAI's Batches API plus the one-shot multipart create; `wake` nudges the validator. */
export function batchesRoutes(deps: ApiDeps & { wake?: () => void }) {
  const tenant = deps.config.BARGE_TENANT;
  const app = new Hono<AppEnv>();

  const newBatch = (tx: Db, input: FileRow, p: BatchParams): Promise<BatchRow> => {
    const created = new Date();
    return insertBatch(tx, {
      id: newId("batch_"),
      tenant,
      endpoint: p.endpoint,
      // A model given up front (one-shot form) is enforced by the validator against the file.
      model: p.model ?? null,
      input_file_id: input.id,
      completion_window: p.completion_window,
      metadata: p.metadata ?? null,
      priority: p.priority ?? 0,
      created_at: created,
      expires_at: new Date(created.getTime() + COMPLETION_WINDOW_MS),
    });
  };

  app.post("/", async (c) => {
    const row = (c.req.header("content-type") ?? "").toLowerCase().startsWith("multipart/form-data")
      ? await createOneShot(c)
      : await createFromFile(await readJson(c, createBody));
    deps.wake?.();
    return c.json(await presentBatch(deps, row));
  });

  /** The one-shot form: the file is streamed to S3, then file and batch rows land in one transaction. */
  function createOneShot(c: Context<AppEnv>): Promise<BatchRow> {
    return withReceivedFile(deps, c, async (f) => {
      const p = parseWith(oneShotFields, Object.fromEntries(f.fields));
      return deps.db.transaction().execute(async (tx) => {
        const file = await insertFile(tx, {
          id: f.fileId,
          tenant,
          purpose: "batch",
          filename: f.filename,
          bytes: f.bytes,
          status: "processed",
          s3_key: f.key,
        });
        return newBatch(tx, file, p);
      });
    });
  }

  /** OpenAI's create: from an uploaded file, locked against deletion until the batch row exists. */
  async function createFromFile(body: z.output<typeof createBody>): Promise<BatchRow> {
    return deps.db.transaction().execute(async (tx) => {
      const file = await lockFileForUse(tx, tenant, body.input_file_id);
      if (!file) throw new NotFound("file", body.input_file_id, "input_file_id");
      if (file.purpose !== "batch") {
        throw new InvalidRequest(`File '${file.id}' has purpose '${file.purpose}'; a batch input needs purpose 'batch'.`, "input_file_id", "invalid_file_purpose");
      }
      if (file.status === "error") {
        throw new InvalidRequest(`File '${file.id}' failed validation and cannot be used.`, "input_file_id", "invalid_file_status");
      }
      return newBatch(tx, file, body);
    });
  }

  app.get("/", async (c) => {
    const q = readQuery(c, listQuery);
    const { rows, hasMore } = await listBatches(deps.db, tenant, q);
    return c.json(listPage(await presentBatches(deps, rows), hasMore));
  });

  app.get("/:id", async (c) => {
    const id = c.req.param("id");
    const batch = await findBatch(deps.db, tenant, id);
    if (!batch) throw new NotFound("batch", id, "batch_id");
    return c.json(await presentBatch(deps, batch));
  });

  app.post("/:id/cancel", async (c) => {
    const id = c.req.param("id");
    const batch = await findBatch(deps.db, tenant, id);
    if (!batch) throw new NotFound("batch", id, "batch_id");
    if (FINAL.includes(batch.status)) throw new Conflict(`Batch is ${batch.status} and cannot be cancelled.`, "batch_not_cancellable");
    // Cancelling or finalizing already: the cancel (or the results) are on their way, so it is returned as is.
    let after = batch;
    if (batch.status === "validating" || batch.status === "in_progress") {
      // Undefined when the batch moved on since it was read; answer with where it is now.
      after = (await cancelBatchRow(deps.db, id)) ?? (await findBatch(deps.db, tenant, id)) ?? batch;
    }
    return c.json(await presentBatch(deps, after));
  });

  return app;
}

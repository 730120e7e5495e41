import { Hono } from "hono";
import { z } from "zod";
import { NotFound } from "@barge/core";
import { tenantOf } from "../auth.js";
import type { ApiDeps, AppEnv } from "../deps.js";
import { findBatch } from "../store/batches.js";
import { listBatchEvents, type BatchEventRow } from "../store/batch-events.js";
import { knownId } from "../params.js";
import { readQuery } from "../validation.js";

export const logsQuery = z.object({
  after: z
    .string()
    .regex(/^\d{1,15}$/, { error: "must be the id of an entry (a whole number)" })
    .transform(Number)
    .optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  format: z.enum(["json", "text"]).default("json"),
});

/** One timeline entry as the logs listing shows it. */
function toBatchEvent(r: BatchEventRow) {
  return { object: "batch.event" as const, id: String(r.seq), kind: r.kind, created_at: Math.floor(r.created_at.getTime() / 1000), data: r.data };
}

/** A value a text line shows as it is: a number, a boolean, or a word with no space, quote or `=`. */
const PLAIN = /^[\w.:/@+-]+$/;

/** A `key=value` pair of a text line: values JSON-encoded unless plain. */
function pair(key: string, value: unknown): string {
  const plain = typeof value === "number" || typeof value === "boolean" || (typeof value === "string" && PLAIN.test(value));
  return `${key}=${plain ? String(value) : JSON.stringify(value)}`;
}

/** One line of the text format: `<ISO time> <kind> k=v k=v`. */
export function eventLine(r: BatchEventRow): string {
  return [r.created_at.toISOString(), r.kind, ...Object.entries(r.data).map(([k, v]) => pair(k, v))].join(" ");
}

/**
 * `GET /:id/logs`: a batch's timeline (`batch_events`), oldest first, in OpenAI's list shape
 * paged by entry id, or with `format=text` one line per entry (the page's `has_more` and
 * `last_id` then travel in headers).
 */
export function batchLogsRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();

  app.get("/:id/logs", async (c) => {
    const tenant = tenantOf(c);
    const id = c.req.param("id");
    const batch = await findBatch(deps.db, tenant, knownId(id, "batch_", "batch", "batch_id"));
    if (!batch) throw new NotFound("batch", id, "batch_id");
    const q = readQuery(c, logsQuery);
    const { rows, hasMore } = await listBatchEvents(deps.db, batch.id, q);
    const lastId = rows.length > 0 ? String(rows[rows.length - 1]!.seq) : null;
    if (q.format === "text") {
      c.header("x-barge-has-more", String(hasMore));
      if (lastId !== null) c.header("x-barge-last-id", lastId);
      return c.body(rows.map((r) => `${eventLine(r)}\n`).join(""), 200, { "content-type": "text/plain; charset=utf-8" });
    }
    const data = rows.map(toBatchEvent);
    return c.json({ object: "list" as const, data, first_id: data[0]?.id ?? null, last_id: lastId, has_more: hasMore });
  });

  return app;
}

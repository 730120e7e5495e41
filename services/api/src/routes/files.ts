import { Hono } from "hono";
import { z } from "zod";
import { deleteObject, NotFound, toOpenAIFile } from "@barge/core";
import { contentTypeFor } from "../content-type.js";
import { tenantOf } from "../auth.js";
import type { ApiDeps, AppEnv } from "../deps.js";
import { objectResponse } from "../object-response.js";
import { expiryFrom, formExpiresAfterFields, formExpirySeconds, knownId, safeText } from "../params.js";
import { listPage } from "../present.js";
import { withReceivedFile } from "../receive-file.js";
import { deleteFileRow, findVisibleFile, insertFile, listFiles } from "../store/files.js";
import { rateLimit } from "../tenant-limits.js";
import { isInboxKey } from "../trigger/landing-rules.js";
import { parseWith, readQuery } from "../validation.js";

/** The form fields of `POST /v1/files` beside the `file` part. */
export const fileFormFields = z.object({
  purpose: z.literal("batch", { error: "the only supported value is 'batch'" }),
  ...formExpiresAfterFields("expires_after"),
});

export const listQuery = z.object({
  purpose: safeText.optional(),
  after: safeText.optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(10_000),
  order: z.enum(["asc", "desc"]).default("desc"),
});

/** OpenAI's Files API: upload (streamed to S3), list, retrieve, content, delete. */
export function filesRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();

  app.post("/", rateLimit(deps, () => ["file_uploads_per_minute"]), async (c) => {
    const tenant = tenantOf(c);
    const row = await withReceivedFile(deps, c, (f) => {
      const form = parseWith(fileFormFields.transform((v, ctx) => ({ purpose: v.purpose, expires_after_seconds: formExpirySeconds(v, "expires_after", ctx) })), Object.fromEntries(f.fields));
      const now = new Date();
      return insertFile(deps.db, {
        id: f.fileId,
        tenant,
        purpose: form.purpose,
        filename: f.filename,
        bytes: f.bytes,
        status: "processed",
        s3_key: f.key,
        etag: f.etag,
        created_at: now,
        expires_at: expiryFrom(now, form.expires_after_seconds),
      });
    });
    return c.json(toOpenAIFile(row));
  });

  app.get("/", async (c) => {
    const tenant = tenantOf(c);
    const q = readQuery(c, listQuery);
    const { rows, hasMore } = await listFiles(deps.db, tenant, q);
    return c.json(listPage(rows.map(toOpenAIFile), hasMore));
  });

  app.get("/:id", async (c) => {
    const tenant = tenantOf(c);
    const id = knownId(c.req.param("id"), "file-", "file", "file_id");
    const file = await findVisibleFile(deps.db, tenant, id);
    if (!file) throw new NotFound("file", id, "file_id");
    return c.json(toOpenAIFile(file));
  });

  app.get("/:id/content", async (c) => {
    const tenant = tenantOf(c);
    const id = knownId(c.req.param("id"), "file-", "file content", "file_id");
    const file = await findVisibleFile(deps.db, tenant, id);
    const answer = file ? await objectResponse(deps, file.s3_key, c.req.header("range"), { "content-type": contentTypeFor(file.filename) }) : undefined;
    if (!answer) throw new NotFound("file content", id, "file_id");
    return answer;
  });

  app.delete("/:id", async (c) => {
    const tenant = tenantOf(c);
    const file = await deleteFileRow(deps.db, tenant, knownId(c.req.param("id"), "file-", "file", "file_id"));
    // The row goes first: an object without a row is invisible garbage, a row without an object a broken file.
    // A serverless batch's input is the user's own inbox object: Barge read it in place and leaves it there.
    if (!isInboxKey(file.s3_key, deps.config)) {
      await deleteObject(deps, file.s3_key).catch((err: unknown) => deps.log.warn({ err, key: file.s3_key }, "orphaned a deleted file's object"));
    }
    return c.json({ id: file.id, object: "file" as const, deleted: true });
  });

  return app;
}

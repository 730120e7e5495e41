import { Hono } from "hono";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { z } from "zod";
import { InvalidRequest, NotFound, toOpenAIFile } from "@barge/core";
import { contentTypeFor } from "../content-type.js";
import type { ApiDeps, AppEnv } from "../deps.js";
import { listPage } from "../present.js";
import { withReceivedFile } from "../receive-file.js";
import { deleteFileRow, findVisibleFile, insertFile, listFiles } from "../store/files.js";
import { deleteObject, openObject } from "../store/objects.js";
import { readQuery } from "../validation.js";

const listQuery = z.object({
  purpose: z.string().optional(),
  after: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(10_000),
  order: z.enum(["asc", "desc"]).default("desc"),
});

/** Checks the multipart `purpose` field: Barge stores batch inputs only. */
export function checkPurpose(purpose: string | undefined): "batch" {
  if (purpose === undefined) throw new InvalidRequest("Missing required parameter: 'purpose'.", "purpose", "missing_required_parameter");
  if (purpose !== "batch") {
    throw new InvalidRequest(`Invalid value for 'purpose': '${purpose}'. Supported values are: 'batch'.`, "purpose", "invalid_value");
  }
  return purpose;
}

/** OpenAI's Files API: upload (streamed to S3), list, retrieve, content, delete. */
export function filesRoutes(deps: ApiDeps) {
  const tenant = deps.config.BARGE_TENANT;
  const app = new Hono<AppEnv>();

  app.post("/", async (c) => {
    const row = await withReceivedFile(deps, c, (f) => {
      const purpose = checkPurpose(f.fields.get("purpose"));
      return insertFile(deps.db, { id: f.fileId, tenant, purpose, filename: f.filename, bytes: f.bytes, status: "processed", s3_key: f.key });
    });
    return c.json(toOpenAIFile(row));
  });

  app.get("/", async (c) => {
    const q = readQuery(c, listQuery);
    const { rows, hasMore } = await listFiles(deps.db, tenant, q);
    return c.json(listPage(rows.map(toOpenAIFile), hasMore));
  });

  app.get("/:id", async (c) => {
    const id = c.req.param("id");
    const file = await findVisibleFile(deps.db, tenant, id);
    if (!file) throw new NotFound("file", id, "file_id");
    return c.json(toOpenAIFile(file));
  });

  app.get("/:id/content", async (c) => {
    const id = c.req.param("id");
    const file = await findVisibleFile(deps.db, tenant, id);
    const object = file ? await openObject(deps, file.s3_key) : undefined;
    if (!file || !object) throw new NotFound("file content", id, "file_id");
    return new Response(Readable.toWeb(object.body) as WebReadableStream<Uint8Array> as ReadableStream<Uint8Array>, {
      headers: { "content-type": contentTypeFor(file.filename), "content-length": String(object.bytes) },
    });
  });

  app.delete("/:id", async (c) => {
    const file = await deleteFileRow(deps.db, tenant, c.req.param("id"));
    // The row goes first: an object without a row is invisible garbage, a row without an object a broken file.
    await deleteObject(deps, file.s3_key).catch((err: unknown) => deps.log.warn({ err, key: file.s3_key }, "orphaned a deleted file's object"));
    return c.json({ id: file.id, object: "file" as const, deleted: true });
  });

  return app;
}

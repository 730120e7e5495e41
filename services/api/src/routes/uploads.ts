import { Hono } from "hono";
import { z } from "zod";
import { deleteObject, Conflict, deleteObjects, InvalidRequest, keys, newId, NotFound, statObject, stitch, toOpenAIUpload, type UploadRow } from "@barge/core";
import { tenantOf } from "../auth.js";
import type { ApiDeps, AppEnv } from "../deps.js";
import { fileName } from "../filename.js";
import { fileTooLarge } from "../multipart.js";
import { expiresAfter, expiryFrom } from "../params.js";
import { withReceivedPart } from "../receive-file.js";
import { md5OfObject } from "../store/objects.js";
import { endUpload, findUpload, finishUpload, insertUpload, partKey, partsInOrder, recordPart, startPart } from "../store/uploads.js";
import { rateLimit } from "../tenant-limits.js";
import { readJson } from "../validation.js";

/** OpenAI's ceiling for one part; there is no floor (see `complete`). */
export const MAX_UPLOAD_PART_BYTES = 64 * 1024 * 1024;
/** OpenAI's ceiling on the parts one upload may join. */
export const MAX_UPLOAD_PARTS = 10_000;
/** OpenAI's lifetime of an upload that is never completed. */
const UPLOAD_LIFETIME_MS = 3600 * 1000;

export const uploadCreateBody = z.object({
  bytes: z.number().int().nonnegative(),
  filename: fileName,
  mime_type: z.string().regex(/^[\w.+-]+\/[\w.+-]+$/, "must be a MIME type such as 'application/jsonl'"),
  purpose: z.literal("batch", { error: "the only supported value is 'batch'" }),
  expires_after: expiresAfter.optional(),
});

export const uploadCompleteBody = z.object({
  part_ids: z.array(z.string().min(1)).max(MAX_UPLOAD_PARTS, `at most ${MAX_UPLOAD_PARTS} parts can be joined`),
  md5: z.string().regex(/^[0-9a-fA-F]{32}$/, "must be 32 hex digits").optional(),
});

/** The 400 for a part that would take the upload's parts past its declared bytes. */
const uploadTooLarge = () => new InvalidRequest("The part would take the upload's parts past its declared bytes.", "data", "upload_too_large");

const unix = (d: Date) => Math.floor(d.getTime() / 1000);

/**
 * OpenAI's Uploads API over S3. Each part streams into its own staged object (a multipart
 * upload of its own when it is large), because a multipart form part has no length up front and
 * S3's UploadPart needs one. `complete` then joins the chosen parts, in the client's order, into
 * the file with one multipart upload: parts of 5 MiB or more are copied server-side
 * (UploadPartCopy), smaller ones concatenated into parts of at least 5 MiB. So parts may arrive
 * in any order and have any size, as OpenAI allows, and no part is ever held whole in memory.
 */
export function uploadsRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();

  const notPending = (u: UploadRow) => new Conflict(`Upload '${u.id}' is ${u.status} and does not accept this.`, "invalid_upload_status");

  /** The upload, or 404. */
  const load = async (tenant: string, id: string) => {
    const found = await findUpload(deps.db, tenant, id);
    if (!found) throw new NotFound("upload", id, "upload_id");
    return found;
  };

  const dropStaged = (keysToDelete: string[]) =>
    deleteObjects(deps, keysToDelete).catch((err: unknown) => deps.log.warn({ err, keys: keysToDelete.length }, "could not delete staged upload parts"));

  // Creating an upload starts a file, so it counts once against the tenant's file uploads; its parts do not.
  app.post("/", rateLimit(deps, () => ["file_uploads_per_minute"]), async (c) => {
    const tenant = tenantOf(c);
    const body = await readJson(c, uploadCreateBody, deps.config);
    if (body.bytes > deps.config.MAX_FILE_BYTES) throw fileTooLarge(deps.config.MAX_FILE_BYTES, 400, "bytes");
    const now = new Date();
    const upload = await insertUpload(deps.db, {
      id: newId("upload_"),
      tenant,
      filename: body.filename,
      purpose: body.purpose,
      mime_type: body.mime_type,
      bytes: body.bytes,
      created_at: now,
      expires_at: new Date(now.getTime() + UPLOAD_LIFETIME_MS),
      file_expires_after_seconds: body.expires_after?.seconds ?? null,
    });
    return c.json(toOpenAIUpload(upload, null));
  });

  app.post("/:id/parts", async (c) => {
    const tenant = tenantOf(c);
    const id = c.req.param("id");
    const started = await startPart(deps.db, tenant, id, new Date());
    if (!started) {
      const { upload } = await load(tenant, id);
      if (upload.status === "pending") throw new Conflict(`Upload '${id}' has expired.`, "upload_expired");
      throw notPending(upload);
    }
    const key = partKey(tenant, id, started.partNumber);
    // Reading stops the moment the part passes what is left of the declared bytes.
    const tooLarge = started.remaining < MAX_UPLOAD_PART_BYTES ? uploadTooLarge : undefined;
    const maxBytes = Math.max(0, Math.min(MAX_UPLOAD_PART_BYTES, started.remaining));
    const part = await withReceivedPart(deps, c, { field: "data", key, maxBytes, tooLarge }, async (received) => {
      const row = await recordPart(deps.db, { id: newId("part_"), upload_id: id, part_number: started.partNumber, bytes: received.bytes, s3_key: key });
      if (row === "not_pending") throw new Conflict(`Upload '${id}' stopped accepting parts while this one was sent.`, "invalid_upload_status");
      // Parts sent in parallel each fit alone; together they may not.
      if (row === "too_large") throw uploadTooLarge();
      return row;
    });
    return c.json({ id: part.id, object: "upload.part" as const, created_at: unix(part.created_at), upload_id: id });
  });

  app.post("/:id/complete", async (c) => {
    const tenant = tenantOf(c);
    const id = c.req.param("id");
    const body = await readJson(c, uploadCompleteBody, deps.config);
    const { upload, file } = await load(tenant, id);
    // Idempotent: a client retrying a completion that succeeded gets the same upload back.
    if (upload.status === "completed") return c.json(toOpenAIUpload(upload, file));
    if (upload.status !== "pending") throw notPending(upload);
    if (upload.expires_at <= new Date()) throw new Conflict(`Upload '${id}' has expired.`, "upload_expired");

    const seen = new Set<string>();
    const duplicate = body.part_ids.find((p) => seen.has(p) || !seen.add(p));
    if (duplicate !== undefined) throw new InvalidRequest(`Part '${duplicate}' is listed more than once.`, "part_ids", "duplicate_part_id");
    const { parts, unknown } = await partsInOrder(deps.db, id, body.part_ids);
    if (unknown !== undefined) throw new InvalidRequest(`Upload '${id}' has no part '${unknown}'.`, "part_ids", "invalid_value");
    const total = parts.reduce((n, p) => n + p.bytes, 0);
    if (total !== upload.bytes) {
      throw new InvalidRequest(`The parts add up to ${total} bytes, but the upload was created with bytes=${upload.bytes}.`, "part_ids", "bytes_mismatch");
    }

    // A new file id per attempt: racing completes never write the same object, and the loser deletes only its own.
    const fileId = newId("file-");
    const key = keys.input(tenant, fileId);
    try {
      await stitch(deps, { segments: parts.map((p) => ({ key: p.s3_key, size: p.bytes })), destKey: key, contentType: upload.mime_type });
    } catch (err) {
      // A cancel or expiry deleted the staged parts under us: that, not the S3 error, is the answer.
      const now = await load(tenant, id);
      if (now.upload.status !== "pending") throw notPending(now.upload);
      throw err;
    }
    try {
      if (body.md5) {
        const actual = await md5OfObject(deps, key);
        if (actual !== body.md5.toLowerCase()) {
          throw new InvalidRequest(`The content's MD5 is ${actual}, not the md5 given; the upload stays pending.`, "md5", "md5_mismatch");
        }
      }
      // HEAD's spelling of the ETag, which the validator compares; no one else writes this fresh key.
      const { etag } = await statObject(deps, key);
      const now = new Date();
      const { stagedKeys } = await finishUpload(deps.db, id, {
        id: fileId,
        tenant,
        purpose: upload.purpose,
        filename: upload.filename,
        bytes: total,
        status: "processed",
        s3_key: key,
        etag: etag ?? null,
        created_at: now,
        expires_at: expiryFrom(now, upload.file_expires_after_seconds),
      });
      await dropStaged(stagedKeys);
    } catch (err) {
      await deleteObject(deps, key).catch((e: unknown) => deps.log.warn({ err: e, key }, "could not delete an unpublished upload"));
      throw err;
    }
    const done = await load(tenant, id);
    return c.json(toOpenAIUpload(done.upload, done.file));
  });

  app.post("/:id/cancel", async (c) => {
    const tenant = tenantOf(c);
    const id = c.req.param("id");
    await load(tenant, id);
    const ended = await endUpload(deps.db, id, "cancelled");
    if (ended) {
      await dropStaged(ended.stagedKeys);
      return c.json(toOpenAIUpload(ended.upload, null));
    }
    // Cancelling twice is harmless; cancelling a completed or expired upload is not possible.
    const now = await load(tenant, id);
    if (now.upload.status === "cancelled") return c.json(toOpenAIUpload(now.upload, null));
    throw notPending(now.upload);
  });

  return app;
}

import { Hono } from "hono";
import { z } from "zod";
import { copyObjectIfMatch, deleteObject, Conflict, headObject, InvalidRequest, isPreconditionFailed, keys, newId, NotFound, presignPut, toOpenAIFile } from "@barge/core";
import { checkBatchInput } from "../check-input.js";
import type { ApiDeps, AppEnv } from "../deps.js";
import { fileTooLarge } from "../multipart.js";
import { expiresAfter, expiryFrom } from "../params.js";
import { findFile, insertFile, settlePendingFile } from "../store/files.js";
import { readJson } from "../validation.js";

export const presignBody = z.object({
  filename: z.string().min(1).max(255),
  purpose: z.literal("batch", { error: "the only supported value is 'batch'" }),
  bytes: z.number().int().nonnegative().optional(),
  expires_after: expiresAfter.optional(),
});

/**
 * Barge's presigned uploads (not in OpenAI's API): presign creates a pending file and a PUT URL
 * straight to S3, for a staging key of its own; complete checks the staged object and copies it
 * to the file's input key only if it is still the object it checked, so a URL that is still
 * valid afterwards cannot replace what was validated. A pending row's `s3_key` is its staging
 * key, which is how the sweeper of lapsed uploads finds the object to delete.
 */
export function presignRoutes(deps: ApiDeps) {
  const tenant = deps.config.BARGE_TENANT;
  const maxBytes = deps.config.MAX_FILE_BYTES;
  const app = new Hono<AppEnv>();

  app.post("/presign", async (c) => {
    const body = await readJson(c, presignBody);
    if (body.bytes !== undefined && body.bytes > maxBytes) throw fileTooLarge(maxBytes, 400, "bytes");
    const id = newId("file-");
    const key = keys.staging(tenant, id);
    const expiresIn = deps.config.PRESIGN_EXPIRES_SECONDS;
    const now = new Date();
    const expiresAt = new Date(now.getTime() + expiresIn * 1000);
    const uploadUrl = await presignPut(deps, key, expiresIn);
    await insertFile(deps.db, {
      id,
      tenant,
      purpose: body.purpose,
      filename: body.filename,
      bytes: body.bytes ?? 0,
      status: "pending",
      s3_key: key,
      upload_expires_at: expiresAt,
      created_at: now,
      expires_at: expiryFrom(now, body.expires_after?.seconds),
    });
    return c.json({
      id,
      object: "file.upload" as const,
      upload_url: uploadUrl,
      method: "PUT" as const,
      expires_at: Math.floor(expiresAt.getTime() / 1000),
      key,
    });
  });

  app.post("/:id/complete", async (c) => {
    const id = c.req.param("id");
    const file = await findFile(deps.db, tenant, id);
    if (!file) throw new NotFound("file", id, "file_id");
    // Idempotent: a client retrying a completion that succeeded gets the same file back.
    if (file.status === "processed") return c.json(toOpenAIFile(file));
    if (file.status !== "pending") throw new Conflict(`File '${id}' is ${file.status} and cannot be completed.`, "invalid_file_status");

    const head = await headObject(deps, file.s3_key);
    if (!head) {
      throw new InvalidRequest(`Nothing has been uploaded for file '${id}' yet; PUT it to the upload_url first.`, "file", "upload_incomplete");
    }
    if (head.bytes > maxBytes) {
      await settlePendingFile(deps.db, id, { status: "error", bytes: head.bytes });
      // An oversized object is never read, so there is no reason to keep paying for it.
      await deleteObject(deps, file.s3_key);
      throw fileTooLarge(maxBytes, 400);
    }
    const checked = await checkBatchInput(deps, file.s3_key);
    if (checked.problem) {
      await settlePendingFile(deps.db, id, { status: "error", bytes: checked.bytes });
      if (checked.problem.code === "file_too_large") await deleteObject(deps, file.s3_key);
      throw checked.problem;
    }
    const finalKey = keys.input(tenant, id);
    let etag: string;
    try {
      etag = await copyObjectIfMatch(deps, file.s3_key, finalKey, checked.check?.etag ?? head.etag);
    } catch (err) {
      // A PUT landed between the check and the copy. The file stays pending: completing again checks the new object.
      if (isPreconditionFailed(err)) throw new Conflict(`The object uploaded for file '${id}' changed while it was being checked; complete the upload again.`, "input_changed");
      throw err;
    }
    // The copy holds exactly the bytes checked, so the check's record stands for it under the copy's ETag.
    const inputCheck = checked.check && { ...checked.check, etag };
    const settled = await settlePendingFile(deps.db, id, { status: "processed", bytes: checked.bytes, inputCheck, stored: { key: finalKey, etag } });
    if (settled) await deleteObject(deps, file.s3_key).catch((err: unknown) => deps.log.warn({ err, key: file.s3_key }, "could not delete a staged upload"));
    const done = settled ?? (await findFile(deps.db, tenant, id));
    // Undefined: the sweeper removed the lapsed upload while we were checking it, so the copy is nobody's.
    if (!done || done.status !== "processed") {
      await deleteObject(deps, finalKey).catch((err: unknown) => deps.log.warn({ err, key: finalKey }, "could not delete an unpublished upload"));
      throw new NotFound("file", id, "file_id");
    }
    return c.json(toOpenAIFile(done));
  });

  return app;
}

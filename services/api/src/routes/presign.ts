import { Hono } from "hono";
import { z } from "zod";
import { copyObject, deleteObject, Conflict, headObject, InvalidRequest, keys, newId, NotFound, presignPut, toOpenAIFile } from "@barge/core";
import { checkBatchInput } from "../check-input.js";
import { tenantOf } from "../auth.js";
import type { ApiDeps, AppEnv } from "../deps.js";
import { fileTooLarge } from "../multipart.js";
import { expiresAfter, expiryFrom } from "../params.js";
import { findFile, insertFile, settlePendingFile } from "../store/files.js";
import { rateLimit } from "../tenant-limits.js";
import { readJson } from "../validation.js";

export const presignBody = z.object({
  filename: z.string().min(1).max(255),
  purpose: z.literal("batch", { error: "the only supported value is 'batch'" }),
  /** Required: the presigned PUT signs it as Content-Length, so no other size can be written. */
  bytes: z.number().int().nonnegative(),
  expires_after: expiresAfter.optional(),
});

/**
 * Barge's presigned uploads (not in OpenAI's API): presign creates a pending file and a PUT URL
 * straight to S3, for a staging key of its own; complete copies the staged object to the file's
 * input key and checks the copy, so a URL that is still valid afterwards cannot replace what was
 * validated. A pending row's `s3_key` is its staging key, which is how the sweeper of lapsed
 * uploads finds the object to delete.
 */
export function presignRoutes(deps: ApiDeps) {
  const maxBytes = deps.config.MAX_FILE_BYTES;
  const app = new Hono<AppEnv>();

  app.post("/presign", rateLimit(deps, () => ["file_uploads_per_minute"]), async (c) => {
    const tenant = tenantOf(c);
    const body = await readJson(c, presignBody, deps.config);
    if (body.bytes > maxBytes) throw fileTooLarge(maxBytes, 400, "bytes");
    const id = newId("file-");
    const key = keys.staging(tenant, id);
    const expiresIn = deps.config.PRESIGN_EXPIRES_SECONDS;
    const now = new Date();
    const expiresAt = new Date(now.getTime() + expiresIn * 1000);
    const uploadUrl = await presignPut(deps, key, expiresIn, body.bytes);
    await insertFile(deps.db, {
      id,
      tenant,
      purpose: body.purpose,
      filename: body.filename,
      bytes: body.bytes,
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
    const tenant = tenantOf(c);
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
    // Pending rows from before staging keys name the input key itself, and declared no size.
    const finalKey = keys.input(tenant, id);
    const legacy = file.s3_key === finalKey;
    if (!legacy && head.bytes !== file.bytes) {
      // Only where S3 ignores the signed Content-Length; the file stays pending.
      throw new InvalidRequest(`The uploaded object has ${head.bytes} bytes, not the ${file.bytes} declared at presign.`, "bytes", "size_mismatch");
    }
    // Copied first, then checked: the URL can write only the staging key, so the copy holds still
    // and the ETag of the very GET that was validated is the one recorded. (Checking the staged
    // object and copying it after would need CopySourceIfMatch, which Ceph RGW 16 ignores.)
    const copied = legacy ? head.etag : await copyObject(deps, file.s3_key, finalKey);
    const checked = await checkBatchInput(deps, finalKey);
    if (checked.problem) {
      await settlePendingFile(deps.db, id, { status: "error", bytes: checked.bytes });
      if (!legacy) await deleteObject(deps, finalKey);
      if (checked.problem.code === "file_too_large") await deleteObject(deps, file.s3_key);
      throw checked.problem;
    }
    const etag = checked.check?.etag ?? copied;
    const inputCheck = checked.check;
    const settled = await settlePendingFile(deps.db, id, { status: "processed", bytes: checked.bytes, inputCheck, stored: { key: finalKey, etag } });
    if (settled && !legacy) await deleteObject(deps, file.s3_key).catch((err: unknown) => deps.log.warn({ err, key: file.s3_key }, "could not delete a staged upload"));
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

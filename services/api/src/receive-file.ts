import type { Context } from "hono";
import { Readable } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { type BargeError, deleteObject, InvalidRequest, keys, newId, uploadStream } from "@barge/core";
import { contentTypeFor } from "./content-type.js";
import { tenantOf } from "./auth.js";
import type { ApiDeps, AppEnv } from "./deps.js";
import { readMultipartForm, type FormFile } from "./multipart.js";

/** A file streamed into S3 from a multipart request, not yet recorded in the database. */
export interface ReceivedFile extends FormFile {
  fileId: string;
  key: string;
  fields: Map<string, string>;
  /** The ETag S3 gave the object written. */
  etag: string;
}

/** Where a received form part goes: the form field, the object key, and the most bytes it may have. */
export interface PartTarget {
  field: string;
  key: string;
  maxBytes: number;
  /** The error for a part past `maxBytes`, if not file_too_large. */
  tooLarge?: () => BargeError;
}

/**
 * Streams the `target.field` part of a multipart request to `target.key`, then runs `use` (which
 * checks the other fields and records the object). Whatever fails on the way, the object is
 * deleted, so a rejected request leaves nothing behind in S3.
 */
export async function withReceivedPart<T>(
  deps: ApiDeps,
  c: Context<AppEnv>,
  target: PartTarget,
  use: (part: FormFile & { fields: Map<string, string>; etag: string }) => Promise<T>,
): Promise<T> {
  let writing = false;
  let etag = "";
  try {
    const form = await readMultipartForm(
      requestBody(c),
      {
        contentType: c.req.header("content-type"),
        fileField: target.field,
        maxFileBytes: target.maxBytes,
        tooLarge: target.tooLarge,
        idleMs: deps.config.UPLOAD_IDLE_TIMEOUT_SECONDS * 1000,
      },
      (stream, filename, signal) => {
        writing = true;
        return uploadStream(deps, target.key, stream, { contentType: contentTypeFor(filename), signal }).then((written) => {
          etag = written;
        });
      },
    );
    if (!form.file) throw new InvalidRequest(`Missing required parameter: '${target.field}'.`, target.field, "missing_required_parameter");
    return await use({ ...form.file, fields: form.fields, etag });
  } catch (err) {
    if (writing) await deleteObject(deps, target.key).catch((e: unknown) => deps.log.warn({ err: e, key: target.key }, "could not delete a rejected upload"));
    throw err;
  }
}

/** A new input file from the request's `file` part (see `withReceivedPart`). */
export function withReceivedFile<T>(deps: ApiDeps, c: Context<AppEnv>, use: (file: ReceivedFile) => Promise<T>): Promise<T> {
  const fileId = newId("file-");
  const key = keys.input(tenantOf(c), fileId);
  return withReceivedPart(deps, c, { field: "file", key, maxBytes: deps.config.MAX_FILE_BYTES }, (part) => use({ ...part, fileId, key }));
}

/** The raw request body as a Node stream, read straight off the socket under @hono/node-server. */
function requestBody(c: Context<AppEnv>): Readable {
  const incoming = c.env?.incoming;
  if (incoming) return incoming;
  const body = c.req.raw.body;
  return body ? Readable.fromWeb(body as NodeReadableStream<Uint8Array>) : Readable.from([]);
}

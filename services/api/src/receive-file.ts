import type { Context } from "hono";
import { Readable } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { InvalidRequest, keys, newId } from "@barge/core";
import { uploadStream } from "@barge/core/storage/upload";
import { contentTypeFor } from "./content-type.js";
import type { ApiDeps, AppEnv } from "./deps.js";
import { readMultipartForm, type FormFile } from "./multipart.js";
import { deleteObject } from "./store/objects.js";

/** A file streamed into S3 from a multipart request, not yet recorded in the database. */
export interface ReceivedFile extends FormFile {
  fileId: string;
  key: string;
  fields: Map<string, string>;
}

/**
 * Streams a multipart request's `file` part to a new input key, then runs `use` (which checks
 * the other fields and records the file). Whatever fails on the way, the object is deleted,
 * so a rejected request leaves nothing behind in S3.
 */
export async function withReceivedFile<T>(
  deps: ApiDeps,
  c: Context<AppEnv>,
  use: (file: ReceivedFile) => Promise<T>,
): Promise<T> {
  const fileId = newId("file-");
  const key = keys.input(deps.config.BARGE_TENANT, fileId);
  let writing = false;
  try {
    const form = await readMultipartForm(requestBody(c), c.req.header("content-type"), deps.config.MAX_FILE_BYTES, (stream, filename, signal) => {
      writing = true;
      return uploadStream(deps, key, stream, { contentType: contentTypeFor(filename), signal });
    });
    if (!form.file) throw new InvalidRequest("Missing required parameter: 'file'.", "file", "missing_required_parameter");
    return await use({ ...form.file, fileId, key, fields: form.fields });
  } catch (err) {
    if (writing) await deleteObject(deps, key).catch((e: unknown) => deps.log.warn({ err: e, key }, "could not delete a rejected upload"));
    throw err;
  }
}

/** The raw request body as a Node stream, read straight off the socket under @hono/node-server. */
function requestBody(c: Context<AppEnv>): Readable {
  const incoming = c.env?.incoming;
  if (incoming) return incoming;
  const body = c.req.raw.body;
  return body ? Readable.fromWeb(body as NodeReadableStream<Uint8Array>) : Readable.from([]);
}

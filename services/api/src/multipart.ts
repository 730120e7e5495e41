import busboy from "busboy";
import { Transform, type Readable } from "node:stream";
import { BargeError, InvalidRequest } from "@barge/core";
import { watchBodyIdle } from "./body-idle.js";
import { fileName } from "./filename.js";
import { LineCounter } from "./line-count.js";

/** The file part of a form, as received. */
export interface FormFile {
  filename: string;
  bytes: number;
  /** Its non-blank lines, counted as it streamed (the requests of a batch input). */
  lines: number;
}

/** A parsed multipart form: its small text fields, and its file part if there was one. */
export interface MultipartForm {
  fields: Map<string, string>;
  file: FormFile | null;
}

/** Consumes the file part's bytes (e.g. into S3); must reject once `signal` aborts. */
export type FileSink = (stream: Readable, filename: string, signal: AbortSignal) => Promise<void>;

/** The error for a file over the configured maximum: 413 while it streams in, 400 once it is stored. */
export function fileTooLarge(maxBytes: number, status: 400 | 413 = 413, param = "file"): BargeError {
  return new BargeError(status, "invalid_request_error", `The file is larger than the maximum of ${maxBytes} bytes.`, "file_too_large", param);
}

const FIELD_LIMITS = { fields: 32, fieldSize: 64 * 1024, parts: 40, files: 1 };

/** How a form is read: where its file part is, and how big it may grow. */
export interface FormOptions {
  contentType: string | undefined;
  /** The form field holding the file. */
  fileField: string;
  maxFileBytes: number;
  /** The error for a file past `maxFileBytes`; file_too_large (413) when not given. */
  tooLarge?: () => BargeError;
  /** How long the body may go without a byte (while Barge is ready for more) before it is aborted with 408. */
  idleMs: number;
}

/**
 * Reads a multipart/form-data body, streaming the part named `fileField` into `sink` while
 * counting its bytes and lines, and keeping the other (small) fields. The file is never buffered whole:
 * busboy pushes it through with backpressure. The moment the part grows past `maxFileBytes` it
 * rejects (file_too_large, or `tooLarge`) and aborts the sink, without reading the rest of the request.
 */
export function readMultipartForm(body: Readable, opts: FormOptions, sink: FileSink): Promise<MultipartForm> {
  const { contentType, fileField, maxFileBytes } = opts;
  const tooLarge = opts.tooLarge ?? (() => fileTooLarge(maxFileBytes, 413, fileField));
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      // busboy's limit fires on reaching fileSize, so one more byte means "over the maximum".
      bb = busboy({ headers: { "content-type": contentType ?? "" }, limits: { ...FIELD_LIMITS, fileSize: maxFileBytes + 1 } });
    } catch {
      reject(new InvalidRequest("Expected a multipart/form-data body.", null, "invalid_content_type"));
      return;
    }
    const abort = new AbortController();
    const fields = new Map<string, string>();
    let stored: Promise<FormFile> | null = null;
    let counter: Transform | null = null;
    let settled = false;

    const idle = watchBodyIdle(opts.idleMs, (err) => fail(err), () => body.readableFlowing === false);

    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      idle.stop();
      abort.abort(err);
      reject(err);
      // Stop parsing; @hono/node-server drains or drops whatever the client still sends. Deferred
      // because busboy keeps touching its state right after emitting the event that got us here.
      process.nextTick(() => {
        body.unpipe(bb);
        bb.destroy();
        counter?.destroy();
      });
    };

    const malformed = (err: Error) => fail(new InvalidRequest(`Malformed multipart body: ${err.message}.`, null, "invalid_multipart"));

    bb.on("file", (name, stream, info) => {
      if (name !== fileField || stored) {
        stream.resume();
        return;
      }
      const named = fileName.safeParse(info.filename || "upload.jsonl");
      if (!named.success) {
        stream.resume();
        fail(new InvalidRequest(`Invalid value for 'filename': ${named.error.issues[0]?.message ?? "not a filename"}.`, "filename", "invalid_value"));
        return;
      }
      const filename = named.data;
      let bytes = 0;
      const lines = new LineCounter();
      counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          bytes += chunk.length;
          lines.add(chunk);
          cb(null, chunk);
        },
      });
      stream.on("limit", () => fail(tooLarge()));
      stream.on("error", malformed);
      stream.pipe(counter);
      stored = sink(counter, filename, abort.signal).then(() => ({ filename, bytes, lines: lines.lines }));
      stored.catch(fail);
    });
    bb.on("field", (name, value, info) => {
      if (info.valueTruncated) fail(new InvalidRequest(`The '${name}' field is too long.`, name, "invalid_value"));
      else fields.set(name, value);
    });
    const tooMany = () => fail(new InvalidRequest("The form has too many fields.", null, "invalid_value"));
    bb.on("fieldsLimit", tooMany);
    bb.on("partsLimit", tooMany);
    bb.on("error", malformed);
    bb.on("close", () => {
      idle.stop();
      (stored ?? Promise.resolve(null)).then((file) => {
        if (settled) return;
        settled = true;
        resolve({ fields, file });
      }, fail);
    });
    // A client that disconnects mid-upload errors or closes the request stream; the upload is aborted.
    const interrupted = () => fail(new InvalidRequest("The request ended before the upload was complete.", fileField, "upload_interrupted"));
    body.on("error", interrupted);
    body.on("close", () => {
      if (!body.readableEnded) interrupted();
    });
    body.on("end", () => idle.stop());
    body.pipe(bb);
    body.on("data", () => idle.touch());
  });
}

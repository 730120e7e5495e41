import type { Context } from "hono";
import { isUtf8 } from "node:buffer";
import { z } from "zod";
import { type ApiConfig, BargeError, InvalidRequest } from "@barge/core";
import { watchBodyIdle } from "./body-idle.js";

/** JSON bodies are small parameter objects; anything bigger is refused before it is buffered. */
const MAX_JSON_BYTES = 1024 * 1024;

/** Validates a value, keeping each issue's input so the error handler can tell missing from wrong. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  return schema.parse(value, { reportInput: true });
}

/**
 * Reads a small JSON body and validates it; an empty body counts as `{}`. A body that receives no
 * bytes for UPLOAD_IDLE_TIMEOUT_SECONDS gets 408, as an upload's does, so a stalled client holds no request.
 */
export async function readJson<S extends z.ZodType>(c: Context, schema: S, config: Pick<ApiConfig, "UPLOAD_IDLE_TIMEOUT_SECONDS">): Promise<z.output<S>> {
  const text = await readCapped(c.req.raw.body, MAX_JSON_BYTES, config.UPLOAD_IDLE_TIMEOUT_SECONDS * 1000);
  let json: unknown = {};
  if (text.trim() !== "") {
    try {
      json = JSON.parse(text);
    } catch {
      throw new InvalidRequest(
        "We could not parse the JSON body of your request. The body must be a JSON object.",
        null,
        "invalid_json",
      );
    }
  }
  return parseWith(schema, json);
}

/** Validates the query string. */
export function readQuery<S extends z.ZodType>(c: Context, schema: S): z.output<S> {
  return parseWith(schema, c.req.query());
}

async function readCapped(body: ReadableStream<Uint8Array> | null, max: number, idleMs: number): Promise<string> {
  if (!body) return "";
  const reader = body.getReader();
  let stalled: BargeError | undefined;
  // Cancelling ends the pending read; @hono/node-server then drains or drops what the client still sends.
  const idle = watchBodyIdle(idleMs, (err) => {
    stalled = err;
    void reader.cancel(err).catch(() => undefined);
  });
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (stalled) throw stalled;
      if (done) break;
      idle.touch();
      bytes += value.byteLength;
      if (bytes > max) {
        throw new BargeError(413, "invalid_request_error", `The request body is over ${max} bytes.`, "request_too_large");
      }
      chunks.push(value);
    }
  } catch (err) {
    if (!stalled) await reader.cancel(err).catch(() => undefined);
    throw err;
  } finally {
    idle.stop();
  }
  const all = Buffer.concat(chunks);
  // Decoding would replace bad bytes with U+FFFD, silently turning two different values into one.
  if (!isUtf8(all)) throw new InvalidRequest("The request body is not valid UTF-8.", null, "invalid_utf8");
  return all.toString("utf8");
}

import type { Context } from "hono";
import { isUtf8 } from "node:buffer";
import { z } from "zod";
import { BargeError, InvalidRequest } from "@barge/core";

/** JSON bodies are small parameter objects; anything bigger is refused before it is buffered. */
const MAX_JSON_BYTES = 1024 * 1024;

/** Validates a value, keeping each issue's input so the error handler can tell missing from wrong. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  return schema.parse(value, { reportInput: true });
}

/** Reads a small JSON body and validates it; an empty body counts as `{}`. */
export async function readJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  const text = await readCapped(c.req.raw.body, MAX_JSON_BYTES);
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

async function readCapped(body: ReadableStream<Uint8Array> | null, max: number): Promise<string> {
  if (!body) return "";
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for await (const chunk of body) {
    bytes += chunk.byteLength;
    // Throwing out of the loop cancels the body stream.
    if (bytes > max) {
      throw new BargeError(413, "invalid_request_error", `The request body is over ${max} bytes.`, "request_too_large");
    }
    chunks.push(chunk);
  }
  const all = Buffer.concat(chunks);
  // Decoding would replace bad bytes with U+FFFD, silently turning two different values into one.
  if (!isUtf8(all)) throw new InvalidRequest("The request body is not valid UTF-8.", null, "invalid_utf8");
  return all.toString("utf8");
}

import { isUtf8 } from "node:buffer";
import { z } from "zod";
import { isBlankLine } from "../storage/lines.js";
import { requestLineSchema } from "./request-line.js";
import { isStorableText } from "./storable-text.js";

/** Nesting (arrays and objects together) past which a line is refused rather than parsed into the engine's request. */
export const MAX_JSON_DEPTH = 128;

/** What the checks after the schema read from a line that passed it. */
export interface CheckedRequest {
  ok: true;
  customId: string;
  url: string;
  model: string;
  stream: boolean;
}

/** Why a line failed, worded for the validation report. */
export interface LineProblem {
  ok: false;
  code: string;
  message: string;
  param: string | null;
}

/** The fields whose text Barge stores or routes on, so they must be well-formed text. */
const STORED_FIELDS = ["custom_id", "method", "url", "body.model"] as const;

// A batch whose model overrides the lines' (the one-shot form's `model`) never reads or stores
// the body's `model`, so it may be anything or absent.
const anyModelLineSchema = requestLineSchema.extend({ body: z.looseObject({}) });

/**
 * The slow path, and the declared contract for one request line `b[start, end)` (no newline):
 * UTF-8 (R1), no byte order mark on the file's first line (R2), JSON, nesting depth (R5), no NUL
 * or lone surrogate in the stored fields (R3), then `requestLineSchema`. Null for a blank line. With `anyModel` the body's `model` is not checked
 * (and `model` in the answer is empty).
 */
export function checkRequestLine(b: Buffer, start: number, end: number, firstLine: boolean, anyModel = false): CheckedRequest | LineProblem | null {
  const bytes = b.subarray(start, end);
  if (firstLine && bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    return problem("bom", "The file starts with a UTF-8 byte order mark (BOM); save the file without it.", null);
  }
  if (!isUtf8(bytes)) return problem("invalid_utf8", "This line is not valid UTF-8.", null);
  const text = bytes.toString("utf8");
  if (isBlankLine(text)) return null;
  const json = parseJson(text);
  if (json === INVALID) return problem("invalid_json_line", "This line is not parseable as valid JSON.", null);
  if (nestsDeeperThan(text)) {
    return problem("too_deeply_nested", `This line nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep.`, null);
  }
  const bad = STORED_FIELDS.find((f) => !(anyModel && f === "body.model") && !isStorableString(fieldOf(json, f)));
  if (bad) return problem("invalid_string", `Invalid value for '${bad}': it contains a NUL character (U+0000) or a lone surrogate.`, bad);
  // reportInput: without it zod 4 leaves `issue.input` unset, so a wrong type looked missing.
  const parsed = (anyModel ? anyModelLineSchema : requestLineSchema).safeParse(json, { reportInput: true });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    // An issue at the root: the line is JSON, but not an object; no parameter to name.
    if (issue.path.length === 0) return problem("invalid_request_line", `This line is not a request object: ${issue.message}.`, null);
    const param = issue.path.join(".");
    // JSON has no undefined, so an issue without an input is a key the line does not have.
    const missing = issue.input === undefined && issue.path.length > 0;
    return missing
      ? problem("missing_required_parameter", `Missing required parameter '${param}'.`, param)
      : problem("invalid_request_line", `Invalid value for '${param}': ${issue.message}.`, param);
  }
  const req = parsed.data;
  const model = typeof req.body.model === "string" ? req.body.model : "";
  return { ok: true, customId: req.custom_id, url: req.url, model, stream: req.body.stream === true };
}

/** The `url` of a line, if it is JSON with one (the first line names an upload's endpoint). */
export function urlOfLine(b: Buffer, start: number, end: number): unknown {
  const json = parseJson(b.toString("utf8", start, end));
  return json === INVALID ? undefined : (json as { url?: unknown } | null)?.url;
}

const INVALID = Symbol("invalid");

/**
 * JSON.parse, except that a raw NUL inside a string reads as `\u0000`: JSON forbids it there, but
 * in a stored field it is the NUL rule that names the problem, and so `invalid_string` decides.
 * A raw NUL anywhere else still makes the line invalid JSON.
 */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    if (!text.includes("\0")) return INVALID;
  }
  try {
    const json: unknown = JSON.parse(text.replaceAll("\0", "\\u0000"));
    return STORED_FIELDS.some((f) => hasNul(fieldOf(json, f))) ? json : INVALID;
  } catch {
    return INVALID;
  }
}

function hasNul(v: unknown): boolean {
  return typeof v === "string" && v.includes("\0");
}

function fieldOf(json: unknown, path: (typeof STORED_FIELDS)[number]): unknown {
  if (typeof json !== "object" || json === null) return undefined;
  if (path !== "body.model") return (json as Record<string, unknown>)[path];
  const body = (json as { body?: unknown }).body;
  return typeof body === "object" && body !== null ? (body as { model?: unknown }).model : undefined;
}

/** False for a string holding U+0000 or a lone surrogate; anything else is left to the schema. */
function isStorableString(v: unknown): boolean {
  return typeof v !== "string" || isStorableText(v);
}

/**
 * Whether a JSON text opens more than `max` arrays and objects at once, walked as a loop: the
 * recursive `JSON.stringify` overflows the stack thousands of levels down.
 */
export function nestsDeeperThan(text: string, max: number = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

function problem(code: string, message: string, param: string | null): LineProblem {
  return { ok: false, code, message, param };
}

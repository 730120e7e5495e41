import { newId, type SegmentKind } from "@barge/core";

/**
 * Why a request got no HTTP answer: the engine never answered (`engine_unavailable`,
 * `request_timeout`) after every attempt, or it was never sent because its chunk crashed its
 * runs too often (`chunk_failed`), Postgres refused to store its chunk's results
 * (`unstorable_result`), its batch expired first (`batch_expired`), or its line broke a limit
 * validation checks (`line_too_large`, `too_deeply_nested`).
 */
export type FailureCode =
  | "engine_unavailable"
  | "request_timeout"
  | "chunk_failed"
  | "unstorable_result"
  | "batch_expired"
  | "line_too_large"
  | "too_deeply_nested";

/** The code a request error row gets when the engine answered with an HTTP error. */
export const ENGINE_ERROR_CODE = "engine_error";

/** What the engine did with one request, after `attempts` tries (0: never sent). */
export type EngineOutcome =
  | { kind: "response"; status: number; body: unknown; requestId: string; attempts: number }
  | { kind: "failure"; code: FailureCode; message: string; attempts: number };

/** Why one request failed, as `GET /v1/batches/{id}/errors` reports it. */
export interface RequestFailure {
  code: string;
  message: string;
  /** The engine's HTTP status, or null when it never answered. */
  statusCode: number | null;
  attempts: number;
}

/** Token usage of one successful response, summed into the chunk's checkpoint. */
export interface Usage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
}

/** One line of a batch's output or error file, with where it goes and what it cost. */
export interface ResultLine {
  kind: SegmentKind;
  customId: string;
  /** The JSON text, without the trailing newline. */
  text: string;
  usage: Usage;
  /** Set exactly for error lines. */
  failure?: RequestFailure;
}

const MAX_MESSAGE_CHARS = 1000;

const noUsage: Usage = { promptTokens: 0, completionTokens: 0, cachedTokens: 0, reasoningTokens: 0 };

/**
 * Builds the OpenAI Batch API result line for one request: 2xx answers go to the output file,
 * everything else to the error file. HTTP failures keep OpenAI's `response` shape with the
 * engine's status and body, so clients read both files with one parser.
 */
export function buildResultLine(customId: string, outcome: EngineOutcome, lineId: string = newId("batch_req_")): ResultLine {
  if (outcome.kind === "failure") {
    const text = JSON.stringify({
      id: lineId,
      custom_id: customId,
      response: null,
      error: { code: outcome.code, message: outcome.message },
    });
    const failure = { code: outcome.code, message: outcome.message, statusCode: null, attempts: outcome.attempts };
    return { kind: "error", customId, text, usage: noUsage, failure };
  }
  const ok = outcome.status >= 200 && outcome.status < 300;
  const text = JSON.stringify({
    id: lineId,
    custom_id: customId,
    response: { status_code: outcome.status, request_id: outcome.requestId, body: outcome.body },
    error: null,
  });
  if (ok) return { kind: "output", customId, text, usage: extractUsage(outcome.body) };
  const failure = { code: ENGINE_ERROR_CODE, message: errorMessage(outcome.body), statusCode: outcome.status, attempts: outcome.attempts };
  return { kind: "error", customId, text, usage: noUsage, failure };
}

/** The engine's own error message (vLLM and OpenAI bodies), else the body as text, capped. */
function errorMessage(body: unknown): string {
  const message = field(field(body, "error"), "message");
  const text = typeof message === "string" ? message : typeof body === "string" ? body : JSON.stringify(body);
  return text.slice(0, MAX_MESSAGE_CHARS);
}

/**
 * Reads token usage from a response body. Chat, completions and embeddings report
 * `prompt_tokens`/`completion_tokens`; the Responses API reports `input_tokens`/`output_tokens`
 * and names its detail objects after them. Anything missing or malformed counts as 0.
 */
export function extractUsage(body: unknown): Usage {
  const usage = field(body, "usage");
  if (usage === undefined) return noUsage;
  return {
    promptTokens: count(field(usage, "prompt_tokens") ?? field(usage, "input_tokens")),
    completionTokens: count(field(usage, "completion_tokens") ?? field(usage, "output_tokens")),
    cachedTokens: count(field(field(usage, "prompt_tokens_details") ?? field(usage, "input_tokens_details"), "cached_tokens")),
    reasoningTokens: count(field(field(usage, "completion_tokens_details") ?? field(usage, "output_tokens_details"), "reasoning_tokens")),
  };
}

function field(obj: unknown, name: string): unknown {
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) return undefined;
  const v = (obj as Record<string, unknown>)[name];
  return v === null ? undefined : v;
}

function count(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
}

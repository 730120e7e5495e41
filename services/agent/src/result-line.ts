import { newId, type SegmentKind } from "@barge/core";

/** Why a request got no HTTP answer at all, after every attempt. */
export type FailureCode = "engine_unavailable" | "request_timeout";

/** What the engine did with one request, after retries. */
export type EngineOutcome =
  | { kind: "response"; status: number; body: unknown; requestId: string }
  | { kind: "failure"; code: FailureCode; message: string };

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
  /** The JSON text, without the trailing newline. */
  text: string;
  usage: Usage;
}

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
    return { kind: "error", text, usage: noUsage };
  }
  const ok = outcome.status >= 200 && outcome.status < 300;
  const text = JSON.stringify({
    id: lineId,
    custom_id: customId,
    response: { status_code: outcome.status, request_id: outcome.requestId, body: outcome.body },
    error: null,
  });
  return { kind: ok ? "output" : "error", text, usage: ok ? extractUsage(outcome.body) : noUsage };
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

import { badRequest, embeddingInputTooLong } from "./errors.js";
import { complete, float32Base64, idHex, unitVector } from "./filler.js";
import { isRecord } from "./json.js";
import { hash64, mix32 } from "./prng.js";
import { canonicalInput, checkContext, choiceCount, maxTokensOf, promptList } from "./request-fields.js";
import {
  MESSAGE_OVERHEAD_TOKENS,
  chatPromptTokens,
  contentText,
  countTokens,
  inputTokens,
} from "./tokens.js";

// Pure, deterministic response bodies. Everything but `created`/`created_at` is a function of
// the request: the PRNG is seeded from a hash of path + model + canonical prompt, so the same
// request always gets the same text, ids and vectors, and a test can compute the expected body.

/** Marks every generated body as simulated, so output is never mistaken for a model's. */
export const SYSTEM_FINGERPRINT = "barge-engine-sim";

/** The inference endpoints the sim answers. */
export const SIM_PATHS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"] as const;

/** One of SIM_PATHS. */
export type SimPath = (typeof SIM_PATHS)[number];

const SIM_PATH_SET: ReadonlySet<string> = new Set(SIM_PATHS);

/** Narrows a request path to an inference endpoint. */
export function isSimPath(path: string): path is SimPath {
  return SIM_PATH_SET.has(path);
}

/** Server limits that shape generation; maxModelLen defaults to unlimited. */
export interface SimLimits {
  maxModelLen?: number;
}

/** A generated body plus the token counts the GPU model charges for it. */
export interface Generation {
  body: Record<string, unknown>;
  promptTokens: number;
  completionTokens: number;
}

/** Embedding vector length when the request sets no `dimensions`. */
export const DEFAULT_EMBEDDING_DIMENSIONS = 64;
const MAX_EMBEDDING_DIMENSIONS = 65536;

/** Validates a request and builds its deterministic body; throws ApiError (400) for invalid or over-long requests. */
export function generate(path: SimPath, body: unknown, limits: SimLimits = {}): Generation {
  if (!isRecord(body)) throw badRequest("Request body must be a JSON object");
  const model = body.model;
  if (typeof model !== "string" || model === "") throw badRequest("Field required: model (a non-empty string)", "model");
  if (body.stream === true) throw badRequest("engine-sim does not implement streaming; send stream=false", "stream");
  const maxModelLen = limits.maxModelLen ?? Infinity;
  switch (path) {
    case "/v1/chat/completions":
      return chatCompletion(body, model, maxModelLen);
    case "/v1/completions":
      return textCompletion(body, model, maxModelLen);
    case "/v1/embeddings":
      return embeddings(body, model, maxModelLen);
    case "/v1/responses":
      return response(body, model, maxModelLen);
  }
}

/** The deterministic response body for a request to `path` (throws ApiError for invalid requests). */
export function simulate(path: SimPath, body: unknown, limits: SimLimits = {}): Record<string, unknown> {
  return generate(path, body, limits).body;
}

/** What a test should expect, minus `created` (`created_at` for /v1/responses), the only wall-clock field. */
export function expectedBody(path: SimPath, body: unknown, limits: SimLimits = {}): Record<string, unknown> {
  const { created: _created, created_at: _createdAt, ...rest } = simulate(path, body, limits);
  return rest;
}

function chatCompletion(body: Record<string, unknown>, model: string, maxModelLen: number): Generation {
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    throw badRequest("Field required: messages (a non-empty array)", "messages");
  }
  let canonical = "";
  for (const message of messages) {
    if (!isRecord(message) || typeof message.role !== "string") {
      throw badRequest("Each message must be an object with a string role", "messages");
    }
    canonical += `${message.role}\u0000${contentText(message.content)}\u0001`;
  }
  const promptTokens = chatPromptTokens(messages);
  const maxTokens = maxTokensOf(body, "max_completion_tokens") ?? maxTokensOf(body, "max_tokens");
  const n = choiceCount(body);
  checkContext(promptTokens, maxTokens, maxModelLen);

  const [h1, h2] = hash64(`/v1/chat/completions\u0000${model}\u0000${canonical}`);
  const choices: unknown[] = [];
  let completionTokens = 0;
  for (let i = 0; i < n; i++) {
    const c = complete(mix32(h1 + i), promptTokens, maxTokens, maxModelLen);
    completionTokens += c.tokens;
    choices.push({
      index: i,
      message: { role: "assistant", content: c.text },
      logprobs: null,
      finish_reason: c.finishReason,
    });
  }
  return completionGeneration(`chatcmpl-sim-${idHex(h1, h2, maxTokens, n)}`, "chat.completion", model, choices, promptTokens, completionTokens);
}

/** A chat or text completion body in OpenAI's shape, with its usage and the sim's fingerprint. */
function completionGeneration(id: string, object: string, model: string, choices: unknown[], promptTokens: number, completionTokens: number): Generation {
  return {
    body: {
      id,
      object,
      created: nowSeconds(),
      model,
      choices,
      usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
      system_fingerprint: SYSTEM_FINGERPRINT,
    },
    promptTokens,
    completionTokens,
  };
}

function textCompletion(body: Record<string, unknown>, model: string, maxModelLen: number): Generation {
  const prompts = promptList(body.prompt, "prompt");
  const maxTokens = maxTokensOf(body, "max_tokens");
  const n = choiceCount(body);
  const choices: unknown[] = [];
  let promptTokens = 0;
  let completionTokens = 0;
  let id1 = 0;
  let id2 = 0;
  for (const [p, prompt] of prompts.entries()) {
    const tokens = inputTokens(prompt);
    checkContext(tokens, maxTokens, maxModelLen);
    promptTokens += tokens;
    // Each prompt is seeded on its own, so a prompt's text does not depend on its batch neighbours.
    const [h1, h2] = hash64(`/v1/completions\u0000${model}\u0000${canonicalInput(prompt)}`);
    id1 = mix32(id1 ^ h1);
    id2 = mix32(id2 + h2);
    for (let i = 0; i < n; i++) {
      const c = complete(mix32(h1 + i), tokens, maxTokens, maxModelLen);
      completionTokens += c.tokens;
      choices.push({ index: p * n + i, text: c.text, logprobs: null, finish_reason: c.finishReason });
    }
  }
  return completionGeneration(`cmpl-sim-${idHex(id1, id2, maxTokens, n)}`, "text_completion", model, choices, promptTokens, completionTokens);
}

function embeddings(body: Record<string, unknown>, model: string, maxModelLen: number): Generation {
  const inputs = promptList(body.input, "input");
  const dimensions = body.dimensions ?? DEFAULT_EMBEDDING_DIMENSIONS;
  if (typeof dimensions !== "number" || !Number.isInteger(dimensions) || dimensions < 1 || dimensions > MAX_EMBEDDING_DIMENSIONS) {
    throw badRequest(`dimensions must be an integer between 1 and ${MAX_EMBEDDING_DIMENSIONS}`, "dimensions");
  }
  const format = body.encoding_format ?? "float";
  if (format !== "float" && format !== "base64") {
    throw badRequest('encoding_format must be "float" or "base64"', "encoding_format");
  }
  const data: unknown[] = [];
  let promptTokens = 0;
  let id1 = 0;
  let id2 = 0;
  for (const [index, input] of inputs.entries()) {
    const tokens = inputTokens(input);
    if (tokens > maxModelLen) throw embeddingInputTooLong(maxModelLen, tokens);
    promptTokens += tokens;
    const [h1, h2] = hash64(`/v1/embeddings\u0000${model}\u0000${canonicalInput(input)}`);
    id1 = mix32(id1 ^ h1);
    id2 = mix32(id2 + h2);
    const vector = unitVector(h1, dimensions);
    data.push({ object: "embedding", index, embedding: format === "base64" ? float32Base64(vector) : Array.from(vector) });
  }
  return {
    body: {
      id: `embd-sim-${idHex(id1, id2, dimensions, format === "base64" ? 1 : 0)}`,
      object: "list",
      created: nowSeconds(),
      model,
      data,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
      system_fingerprint: SYSTEM_FINGERPRINT,
    },
    promptTokens,
    completionTokens: 0,
  };
}

function response(body: Record<string, unknown>, model: string, maxModelLen: number): Generation {
  const instructions = body.instructions ?? null;
  if (instructions !== null && typeof instructions !== "string") throw badRequest("instructions must be a string", "instructions");
  const input = body.input;
  // `instructions` and a string `input` each count as one message, as they do in a chat template.
  let promptTokens = instructions === null ? 0 : MESSAGE_OVERHEAD_TOKENS + countTokens(instructions);
  let canonical = instructions === null ? "" : `system\u0000${instructions}\u0001`;
  if (typeof input === "string" && input !== "") {
    promptTokens += MESSAGE_OVERHEAD_TOKENS + countTokens(input);
    canonical += `user\u0000${input}\u0001`;
  } else if (Array.isArray(input) && input.length > 0) {
    for (const item of input) {
      if (!isRecord(item)) throw badRequest("Each input item must be an object", "input");
      const role = typeof item.role === "string" ? item.role : String(item.type);
      // function_call_output items carry their text in `output`, messages in `content`.
      const text = item.content === undefined && typeof item.output === "string" ? item.output : contentText(item.content);
      promptTokens += MESSAGE_OVERHEAD_TOKENS + countTokens(text);
      canonical += `${role}\u0000${text}\u0001`;
    }
  } else {
    throw badRequest("Field required: input (a non-empty string or array)", "input");
  }
  const maxTokens = maxTokensOf(body, "max_output_tokens");
  checkContext(promptTokens, maxTokens, maxModelLen);

  const [h1, h2] = hash64(`/v1/responses\u0000${model}\u0000${canonical}`);
  const c = complete(mix32(h1), promptTokens, maxTokens, maxModelLen);
  const id = idHex(h1, h2, maxTokens, 1);
  const status = c.finishReason === "length" ? "incomplete" : "completed";
  return {
    body: {
      id: `resp_sim_${id}`,
      object: "response",
      created_at: nowSeconds(),
      status,
      model,
      output: [
        {
          type: "message",
          id: `msg_sim_${id}`,
          status,
          role: "assistant",
          content: [{ type: "output_text", text: c.text, annotations: [] }],
        },
      ],
      usage: {
        input_tokens: promptTokens,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: c.tokens,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: promptTokens + c.tokens,
      },
      incomplete_details: c.finishReason === "length" ? { reason: "max_output_tokens" } : null,
      error: null,
      instructions,
      max_output_tokens: maxTokens,
      system_fingerprint: SYSTEM_FINGERPRINT,
    },
    promptTokens,
    completionTokens: c.tokens,
  };
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

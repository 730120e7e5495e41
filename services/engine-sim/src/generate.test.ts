import { describe, expect, it } from "vitest";
import { ApiError } from "./errors.js";
import { MAX_COMPLETION_TOKENS, MIN_COMPLETION_TOKENS } from "./filler.js";
import { SYSTEM_FINGERPRINT, expectedBody, generate, simulate } from "./generate.js";
import { countTokens } from "./tokens.js";

type Json = Record<string, any>;

const chat = (content: string, extra: Json = {}): Json => ({
  model: "m",
  messages: [{ role: "user", content }],
  ...extra,
});

function apiError(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error("expected an ApiError");
}

function decodeFloat32(b64: string): number[] {
  const bytes = Buffer.from(b64, "base64");
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i += 4) out.push(bytes.readFloatLE(i));
  return out;
}

describe("chat completions", () => {
  it("is deterministic apart from `created`, and expectedBody matches", () => {
    const a = simulate("/v1/chat/completions", chat("hello"));
    const b = simulate("/v1/chat/completions", chat("hello"));
    const { created, ...rest } = a;
    expect(typeof created).toBe("number");
    expect(b).toEqual({ ...rest, created: b.created });
    expect(expectedBody("/v1/chat/completions", chat("hello"))).toEqual(rest);
  });

  it("has the OpenAI chat.completion shape and says it is simulated", () => {
    const body = simulate("/v1/chat/completions", chat("hello")) as Json;
    expect(body.object).toBe("chat.completion");
    expect(body.model).toBe("m");
    expect(body.system_fingerprint).toBe(SYSTEM_FINGERPRINT);
    expect(body.id).toMatch(/^chatcmpl-sim-[0-9a-f]{16}$/);
    expect(Object.keys(body.choices[0])).toEqual(["index", "message", "logprobs", "finish_reason"]);
    expect(body.choices[0].index).toBe(0);
    expect(body.choices[0].message.role).toBe("assistant");
    expect(body.choices[0].logprobs).toBeNull();
    expect(body.choices[0].finish_reason).toBe("stop");
    expect(body.usage.prompt_tokens).toBe(4 + countTokens("hello"));
  });

  it("makes countTokens(text) equal completion_tokens for every length", () => {
    for (let max = 1; max <= 300; max++) {
      const body = simulate("/v1/chat/completions", chat("p", { max_tokens: max })) as Json;
      const text: string = body.choices[0].message.content;
      expect(countTokens(text)).toBe(max);
      expect(body.usage.completion_tokens).toBe(max);
      expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + max);
      expect(body.choices[0].finish_reason).toBe("length");
    }
  });

  it("picks a natural length in 8..48 when no max tokens is set, and varies with the prompt", () => {
    const lengths = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const body = simulate("/v1/chat/completions", chat(`prompt ${i}`)) as Json;
      const tokens: number = body.usage.completion_tokens;
      expect(tokens).toBeGreaterThanOrEqual(MIN_COMPLETION_TOKENS);
      expect(tokens).toBeLessThanOrEqual(MAX_COMPLETION_TOKENS);
      expect(countTokens(body.choices[0].message.content)).toBe(tokens);
      lengths.add(tokens);
    }
    expect(lengths.size).toBeGreaterThan(20);
  });

  it("prefers max_completion_tokens over max_tokens", () => {
    const body = simulate("/v1/chat/completions", chat("p", { max_tokens: 50, max_completion_tokens: 5 })) as Json;
    expect(body.usage.completion_tokens).toBe(5);
  });

  it("returns n distinct choices and sums their tokens", () => {
    const body = simulate("/v1/chat/completions", chat("p", { n: 3, max_tokens: 6 })) as Json;
    expect(body.choices.map((c: Json) => c.index)).toEqual([0, 1, 2]);
    expect(new Set(body.choices.map((c: Json) => c.message.content)).size).toBe(3);
    expect(body.usage.completion_tokens).toBe(18);
  });

  it("gives different ids to different prompts and parameters", () => {
    const ids = new Set([
      simulate("/v1/chat/completions", chat("a")).id,
      simulate("/v1/chat/completions", chat("b")).id,
      simulate("/v1/chat/completions", chat("a", { max_tokens: 3 })).id,
      simulate("/v1/chat/completions", { ...chat("a"), model: "other" }).id,
    ]);
    expect(ids.size).toBe(4);
  });

  it("cuts a natural completion at the context window with finish_reason length", () => {
    // prompt = 4 + 3 = 7 tokens, window 10 → at most 3 completion tokens.
    const body = simulate("/v1/chat/completions", chat("abcdefghij"), { maxModelLen: 10 }) as Json;
    expect(body.usage.completion_tokens).toBe(3);
    expect(body.choices[0].finish_reason).toBe("length");
  });

  it("rejects over-long requests with vLLM's context-length message", () => {
    const error = apiError(() => generate("/v1/chat/completions", chat("abcd", { max_tokens: 100 }), { maxModelLen: 50 }));
    expect(error.status).toBe(400);
    expect(error.body()).toEqual({
      error: {
        message:
          "This model's maximum context length is 50 tokens. However, you requested 105 tokens (5 in the messages, 100 in the completion). Please reduce the length of the messages or completion.",
        type: "BadRequestError",
        param: null,
        code: 400,
      },
    });
    const promptOnly = apiError(() => generate("/v1/chat/completions", chat("x".repeat(40)), { maxModelLen: 14 }));
    expect(promptOnly.message).toBe(
      "This model's maximum context length is 14 tokens. However, you requested 14 tokens in the messages. Please reduce the length of the messages.",
    );
  });

  it("rejects missing or malformed fields with 400", () => {
    const cases: unknown[] = [
      [],
      { messages: [{ role: "user", content: "x" }] },
      { model: "m" },
      { model: "m", messages: [] },
      { model: "m", messages: ["x"] },
      chat("x", { max_tokens: 0 }),
      chat("x", { max_tokens: 1.5 }),
      chat("x", { n: 0 }),
      chat("x", { stream: true }),
    ];
    for (const body of cases) expect(apiError(() => generate("/v1/chat/completions", body)).status).toBe(400);
    expect(apiError(() => generate("/v1/chat/completions", chat("x", { max_tokens: 0 }))).message).toBe("max_tokens must be at least 1, got 0.");
  });
});

describe("completions", () => {
  it("answers each prompt of a list with n choices, indexed prompt-major", () => {
    const body = simulate("/v1/completions", { model: "m", prompt: ["abcd", "abcdefgh"], n: 2, max_tokens: 4 }) as Json;
    expect(body.object).toBe("text_completion");
    expect(body.id).toMatch(/^cmpl-sim-[0-9a-f]{16}$/);
    expect(body.choices.map((c: Json) => c.index)).toEqual([0, 1, 2, 3]);
    for (const choice of body.choices) {
      expect(Object.keys(choice)).toEqual(["index", "text", "logprobs", "finish_reason"]);
      expect(countTokens(choice.text)).toBe(4);
      expect(choice.finish_reason).toBe("length");
      expect(choice.logprobs).toBeNull();
    }
    expect(body.usage).toEqual({ prompt_tokens: 3, completion_tokens: 16, total_tokens: 19 });
  });

  it("seeds each prompt independently of its batch neighbours", () => {
    const alone = simulate("/v1/completions", { model: "m", prompt: "second" }) as Json;
    const batched = simulate("/v1/completions", { model: "m", prompt: ["first", "second"] }) as Json;
    expect(batched.choices[1].text).toBe(alone.choices[0].text);
  });

  it("rejects an empty prompt", () => {
    expect(apiError(() => generate("/v1/completions", { model: "m", prompt: "" })).status).toBe(400);
    expect(apiError(() => generate("/v1/completions", { model: "m", prompt: [] })).status).toBe(400);
  });
});

describe("embeddings", () => {
  it("returns unit vectors of the requested size, seeded per input", () => {
    const body = simulate("/v1/embeddings", { model: "m", input: ["alpha", "beta", "alpha"], dimensions: 32 }) as Json;
    expect(body.object).toBe("list");
    expect(body.data).toHaveLength(3);
    for (const [i, item] of body.data.entries()) {
      expect(item.object).toBe("embedding");
      expect(item.index).toBe(i);
      expect(item.embedding).toHaveLength(32);
      const norm = Math.sqrt(item.embedding.reduce((s: number, x: number) => s + x * x, 0));
      expect(norm).toBeCloseTo(1, 5);
    }
    expect(body.data[2].embedding).toEqual(body.data[0].embedding);
    expect(body.data[1].embedding).not.toEqual(body.data[0].embedding);
    expect(body.usage).toEqual({ prompt_tokens: 5, total_tokens: 5 }); // 2 + 1 + 2
  });

  it("defaults to 64 dimensions", () => {
    const body = simulate("/v1/embeddings", { model: "m", input: "x" }) as Json;
    expect(body.data[0].embedding).toHaveLength(64);
  });

  it("encodes base64 as little-endian float32 of exactly the float values", () => {
    const floats = simulate("/v1/embeddings", { model: "m", input: ["one", "two"], encoding_format: "float" }) as Json;
    const b64 = simulate("/v1/embeddings", { model: "m", input: ["one", "two"], encoding_format: "base64" }) as Json;
    for (const i of [0, 1]) {
      expect(typeof b64.data[i].embedding).toBe("string");
      expect(decodeFloat32(b64.data[i].embedding)).toEqual(floats.data[i].embedding);
    }
  });

  it("accepts token-id inputs and rejects bad formats and over-long inputs", () => {
    const body = simulate("/v1/embeddings", { model: "m", input: [[1, 2, 3], [4]] }) as Json;
    expect(body.usage.prompt_tokens).toBe(4);
    expect(apiError(() => generate("/v1/embeddings", { model: "m", input: "x", encoding_format: "hex" })).status).toBe(400);
    const tooLong = apiError(() => generate("/v1/embeddings", { model: "m", input: "x".repeat(44) }, { maxModelLen: 10 }));
    expect(tooLong.message).toBe(
      "This model's maximum context length is 10 tokens. However, you requested 11 tokens in the input for embedding generation. Please reduce the length of the input.",
    );
  });
});

describe("responses", () => {
  it("has the Responses API shape with exact usage", () => {
    const request = { model: "m", instructions: "be brief", input: [{ role: "user", content: [{ type: "input_text", text: "hello there" }] }] };
    const body = simulate("/v1/responses", request) as Json;
    expect(body.object).toBe("response");
    expect(body.id).toMatch(/^resp_sim_[0-9a-f]{16}$/);
    expect(typeof body.created_at).toBe("number");
    expect(body.status).toBe("completed");
    expect(body.output).toHaveLength(1);
    const message = body.output[0];
    expect(message.type).toBe("message");
    expect(message.role).toBe("assistant");
    expect(message.content[0].type).toBe("output_text");
    const inputTokens = 4 + countTokens("be brief") + 4 + countTokens("hello there");
    expect(body.usage.input_tokens).toBe(inputTokens);
    expect(body.usage.output_tokens).toBe(countTokens(message.content[0].text));
    expect(body.usage.total_tokens).toBe(inputTokens + body.usage.output_tokens);
    expect(expectedBody("/v1/responses", request)).not.toHaveProperty("created_at");
  });

  it("marks a max_output_tokens cut as incomplete", () => {
    const body = simulate("/v1/responses", { model: "m", input: "hi", max_output_tokens: 7 }) as Json;
    expect(body.status).toBe("incomplete");
    expect(body.incomplete_details).toEqual({ reason: "max_output_tokens" });
    expect(body.usage.output_tokens).toBe(7);
    expect(countTokens(body.output[0].content[0].text)).toBe(7);
  });
});

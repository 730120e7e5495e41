import { describe, expect, it } from "vitest";
import { buildResultLine, extractUsage } from "./result-line.js";

describe("buildResultLine", () => {
  it("puts a 2xx answer in the output file, in OpenAI's shape and key order", () => {
    const body = {
      id: "chatcmpl-1",
      choices: [{ index: 0, message: { role: "assistant", content: "hi" } }],
      usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17, prompt_tokens_details: { cached_tokens: 4 }, completion_tokens_details: { reasoning_tokens: 2 } },
    };
    const line = buildResultLine("req-1", { kind: "response", status: 200, body, requestId: "batch_x:0", attempts: 1 }, "batch_req_abc");
    expect(line.kind).toBe("output");
    expect(line.text).toBe(
      JSON.stringify({ id: "batch_req_abc", custom_id: "req-1", response: { status_code: 200, request_id: "batch_x:0", body }, error: null }),
    );
    expect(Object.keys(JSON.parse(line.text) as object)).toEqual(["id", "custom_id", "response", "error"]);
    expect(line.usage).toEqual({ promptTokens: 12, completionTokens: 5, cachedTokens: 4, reasoningTokens: 2 });
    expect(line.customId).toBe("req-1");
    expect(line.failure).toBeUndefined();
  });

  it("puts an HTTP error in the error file with the engine's status and body, and no usage", () => {
    const body = { error: { message: "bad", type: "BadRequestError", param: null, code: 400 } };
    const line = buildResultLine("req-2", { kind: "response", status: 400, body, requestId: "batch_x:1", attempts: 1 }, "batch_req_def");
    expect(line.kind).toBe("error");
    expect(JSON.parse(line.text)).toEqual({
      id: "batch_req_def",
      custom_id: "req-2",
      response: { status_code: 400, request_id: "batch_x:1", body },
      error: null,
    });
    expect(line.usage).toEqual({ promptTokens: 0, completionTokens: 0, cachedTokens: 0, reasoningTokens: 0 });
    expect(line.failure).toEqual({ code: "engine_error", message: "bad", statusCode: 400, attempts: 1 });
  });

  it("keeps a non-JSON error body as text", () => {
    const line = buildResultLine("req-3", { kind: "response", status: 502, body: "Bad Gateway", requestId: "r", attempts: 5 }, "batch_req_x");
    expect(line.kind).toBe("error");
    expect(JSON.parse(line.text)).toEqual({ id: "batch_req_x", custom_id: "req-3", response: { status_code: 502, request_id: "r", body: "Bad Gateway" }, error: null });
    expect(line.failure).toEqual({ code: "engine_error", message: "Bad Gateway", statusCode: 502, attempts: 5 });
  });

  it("writes a failure without any HTTP answer as response null plus an error object", () => {
    for (const code of ["engine_unavailable", "request_timeout", "chunk_failed", "batch_expired"] as const) {
      const line = buildResultLine("req-4", { kind: "failure", code, message: "gone", attempts: 3 }, "batch_req_ghi");
      expect(line.kind).toBe("error");
      expect(line.text).toBe(JSON.stringify({ id: "batch_req_ghi", custom_id: "req-4", response: null, error: { code, message: "gone" } }));
      expect(line.failure).toEqual({ code, message: "gone", statusCode: null, attempts: 3 });
    }
  });

  it("gives each line a fresh batch_req_ id by default", () => {
    const a = JSON.parse(buildResultLine("a", { kind: "failure", code: "request_timeout", message: "", attempts: 1 }).text) as { id: string };
    const b = JSON.parse(buildResultLine("b", { kind: "failure", code: "request_timeout", message: "", attempts: 1 }).text) as { id: string };
    expect(a.id).toMatch(/^batch_req_[0-9a-z]{24}$/);
    expect(b.id).not.toBe(a.id);
  });
});

describe("extractUsage", () => {
  it("reads the Responses API's input/output token names and details", () => {
    expect(
      extractUsage({ usage: { input_tokens: 30, output_tokens: 9, input_tokens_details: { cached_tokens: 10 }, output_tokens_details: { reasoning_tokens: 3 } } }),
    ).toEqual({ promptTokens: 30, completionTokens: 9, cachedTokens: 10, reasoningTokens: 3 });
  });

  it("reads embeddings usage, which has no completion tokens", () => {
    expect(extractUsage({ usage: { prompt_tokens: 8, total_tokens: 8 } })).toEqual({ promptTokens: 8, completionTokens: 0, cachedTokens: 0, reasoningTokens: 0 });
  });

  it("counts missing, null or malformed usage as zero", () => {
    const zero = { promptTokens: 0, completionTokens: 0, cachedTokens: 0, reasoningTokens: 0 };
    expect(extractUsage("text")).toEqual(zero);
    expect(extractUsage({})).toEqual(zero);
    expect(extractUsage({ usage: null })).toEqual(zero);
    expect(extractUsage({ usage: { prompt_tokens: "12", completion_tokens: -1, prompt_tokens_details: null } })).toEqual(zero);
  });
});

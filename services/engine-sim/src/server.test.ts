import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { expectedBody } from "./generate.js";
import { type EngineSim, createEngineSim } from "./server.js";
import { type Json, MODEL, chat, getJson, post, useSims } from "./test-helpers.js";
import { countTokens } from "./tokens.js";

const start = useSims();

async function metrics(sim: EngineSim): Promise<Record<string, number>> {
  const text = await (await fetch(`${sim.url}/metrics`)).text();
  const values: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const match = /^([a-z_:]+)\{[^}]*\} (\S+)$/.exec(line);
    if (match?.[1] !== undefined && match[2] !== undefined) values[match[1]] = Number(match[2]);
  }
  return values;
}

/** Polls /metrics until `check` holds; fails with the last snapshot after 10 s. */
async function waitForMetrics(sim: EngineSim, check: (m: Record<string, number>) => boolean): Promise<Record<string, number>> {
  const deadline = Date.now() + 10_000;
  let last: Record<string, number> = {};
  while (Date.now() < deadline) {
    last = await metrics(sim);
    if (check(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`metrics never matched: ${JSON.stringify(last)}`);
}

function withoutCreated(body: Json): Json {
  const { created: _created, created_at: _createdAt, ...rest } = body;
  return rest;
}

/** Starts a request that the caller will abort; its rejection is expected and swallowed. */
function pending(sim: EngineSim, body: Json): AbortController {
  const controller = new AbortController();
  post(sim, "/v1/chat/completions", body, { signal: controller.signal }).catch(() => {});
  return controller;
}

describe("engine-sim over HTTP", () => {
  it("answers the same chat request identically apart from `created`, as expectedBody predicts", async () => {
    const sim = await start();
    const request = chat("What is the capital of France?");
    const a = await post(sim, "/v1/chat/completions", request);
    const b = await post(sim, "/v1/chat/completions", request);
    expect(a.status).toBe(200);
    expect(a.headers.get("x-barge-simulated")).toBe("true");
    expect(a.headers.get("content-type")).toBe("application/json");
    expect(withoutCreated(a.json)).toEqual(withoutCreated(b.json));
    expect(withoutCreated(a.json)).toEqual(expectedBody("/v1/chat/completions", request, { maxModelLen: 8192 }));
    expect(Math.abs(a.json.created - Date.now() / 1000)).toBeLessThan(60);
    expect(a.json.system_fingerprint).toBe("barge-engine-sim");
  });

  it("reports exact token usage and respects max_tokens on every endpoint", async () => {
    const sim = await start();
    const c = await post(sim, "/v1/chat/completions", chat("abcdefgh", { max_tokens: 17 }));
    expect(c.json.usage).toEqual({ prompt_tokens: 6, completion_tokens: 17, total_tokens: 23 });
    expect(countTokens(c.json.choices[0].message.content)).toBe(17);
    expect(c.json.choices[0].finish_reason).toBe("length");

    const natural = await post(sim, "/v1/chat/completions", chat("abcdefgh"));
    expect(natural.json.usage.completion_tokens).toBe(countTokens(natural.json.choices[0].message.content));
    expect(natural.json.choices[0].finish_reason).toBe("stop");

    const t = await post(sim, "/v1/completions", { model: MODEL, prompt: "abcde", max_tokens: 9 });
    expect(t.json.usage).toEqual({ prompt_tokens: 2, completion_tokens: 9, total_tokens: 11 });
    expect(countTokens(t.json.choices[0].text)).toBe(9);

    const r = await post(sim, "/v1/responses", { model: MODEL, input: "abcd", max_output_tokens: 3 });
    expect(r.json.usage).toMatchObject({ input_tokens: 5, output_tokens: 3, total_tokens: 8 });
    expect(countTokens(r.json.output[0].content[0].text)).toBe(3);
  });

  it("serves embeddings whose base64 form decodes to the float form, unit-normalized", async () => {
    const sim = await start();
    const request = { model: MODEL, input: ["first input", "second input"], dimensions: 48 };
    const floats = await post(sim, "/v1/embeddings", { ...request, encoding_format: "float" });
    const b64 = await post(sim, "/v1/embeddings", { ...request, encoding_format: "base64" });
    expect(floats.status).toBe(200);
    expect(floats.json.usage).toEqual({ prompt_tokens: 6, total_tokens: 6 });
    for (const i of [0, 1]) {
      const vector: number[] = floats.json.data[i].embedding;
      expect(vector).toHaveLength(48);
      expect(Math.hypot(...vector)).toBeCloseTo(1, 5);
      const bytes = Buffer.from(b64.json.data[i].embedding as string, "base64");
      expect(bytes.length).toBe(48 * 4);
      expect(Array.from({ length: 48 }, (_, k) => bytes.readFloatLE(k * 4))).toEqual(vector);
    }
  });

  it("lists the models as simulated", async () => {
    const sim = await start({ models: ["alpha", "beta"], maxModelLen: 4096 });
    const body = await getJson(sim, "/v1/models");
    expect(body.object).toBe("list");
    expect(body.data.map((m: Json) => [m.id, m.object, m.owned_by, m.max_model_len])).toEqual([
      ["alpha", "model", "barge-engine-sim (simulated)", 4096],
      ["beta", "model", "barge-engine-sim (simulated)", 4096],
    ]);
    expect(typeof body.data[0].created).toBe("number");
    const health = await fetch(`${sim.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe("");
  });

  it("answers 404 for an unknown model, in vLLM's error shape", async () => {
    const sim = await start();
    const reply = await post(sim, "/v1/chat/completions", { ...chat("hi"), model: "gpt-9" });
    expect(reply.status).toBe(404);
    expect(reply.json).toEqual({
      error: { message: "The model `gpt-9` does not exist.", type: "NotFoundError", param: "model", code: 404 },
    });
  });

  it("answers 400 when prompt + max tokens exceed maxModelLen", async () => {
    const sim = await start({ maxModelLen: 100 });
    const reply = await post(sim, "/v1/chat/completions", chat("x".repeat(40), { max_completion_tokens: 90 }));
    expect(reply.status).toBe(400);
    expect(reply.json.error).toEqual({
      message:
        "This model's maximum context length is 100 tokens. However, you requested 104 tokens (14 in the messages, 90 in the completion). Please reduce the length of the messages or completion.",
      type: "BadRequestError",
      param: null,
      code: 400,
    });
    expect((await post(sim, "/v1/chat/completions", chat("x".repeat(40), { max_completion_tokens: 86 }))).status).toBe(200);
  });

  it("answers 400 for invalid JSON, missing fields, and the fail marker", async () => {
    const sim = await start();
    const invalid = await post(sim, "/v1/chat/completions", "{not json");
    expect(invalid.status).toBe(400);
    expect(invalid.json.error.type).toBe("BadRequestError");
    expect((await post(sim, "/v1/chat/completions", { model: MODEL })).status).toBe(400);
    expect((await post(sim, "/v1/completions", { prompt: "x" })).status).toBe(400);

    const marked = await post(sim, "/v1/chat/completions", chat("please __sim_fail_400__ now"));
    expect(marked.status).toBe(400);
    expect(marked.json.error.message).toContain("__sim_fail_400__");
    expect((await post(sim, "/v1/completions", { model: MODEL, prompt: ["ok", "x__sim_fail_400__"] })).status).toBe(400);
    expect((await post(sim, "/v1/embeddings", { model: MODEL, input: "__sim_fail_400__" })).status).toBe(400);
    // Outside the prompt fields the marker is inert.
    expect((await post(sim, "/v1/chat/completions", chat("fine", { user: "__sim_fail_400__" }))).status).toBe(200);
    expect(sim.stats().counters.clientErrors).toBe(6);
  });

  it("models the GPU: maxNumSeqs run, the rest wait, visible in /metrics", async () => {
    const sim = await start({ maxNumSeqs: 4, decodeTokensPerSec: 1 });
    const controllers = Array.from({ length: 10 }, (_, i) => pending(sim, chat(`slow ${i}`, { max_tokens: 1000 })));
    const seen = await waitForMetrics(sim, (m) => m["vllm:num_requests_running"] === 4 && m["vllm:num_requests_waiting"] === 6);
    expect(seen["vllm:kv_cache_usage_perc"]).toBe(1);
    expect(seen["vllm:request_success_total"]).toBe(0);
    for (const controller of controllers) controller.abort();
    const after = await waitForMetrics(sim, (m) => m["barge_sim_requests_aborted_total"] === 10);
    expect(after["vllm:num_requests_running"]).toBe(0);
    expect(after["vllm:num_requests_waiting"]).toBe(0);
    expect(sim.stats().counters).toMatchObject({ maxRunning: 4, maxWaiting: 6, aborted: 10, completed: 0 });
  });

  it("frees a slot at once when a client disconnects", async () => {
    const sim = await start({ maxNumSeqs: 2, decodeTokensPerSec: 1 });
    const first = pending(sim, chat("one", { max_tokens: 1000 }));
    pending(sim, chat("two", { max_tokens: 1000 }));
    await waitForMetrics(sim, (m) => m["vllm:num_requests_running"] === 2);
    const third = pending(sim, chat("three", { max_tokens: 1000 }));
    await waitForMetrics(sim, (m) => m["vllm:num_requests_waiting"] === 1);

    third.abort(); // a waiting request leaves the queue
    await waitForMetrics(sim, (m) => m["vllm:num_requests_waiting"] === 0 && m["barge_sim_requests_aborted_total"] === 1);
    first.abort(); // a running request frees its slot
    const m = await waitForMetrics(sim, (s) => s["vllm:num_requests_running"] === 1);
    expect(m["barge_sim_requests_aborted_total"]).toBe(2);
    expect(m["vllm:kv_cache_usage_perc"]).toBe(0.5);
  });

  it("completes queued requests with slow but finite rates and counts tokens", async () => {
    const sim = await start({ maxNumSeqs: 2, decodeTokensPerSec: 2000, prefillTokensPerSec: 100_000 });
    const replies = await Promise.all(Array.from({ length: 6 }, (_, i) => post(sim, "/v1/chat/completions", chat(`q${i}`, { max_tokens: 20 }))));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const m = await metrics(sim);
    expect(m["vllm:request_success_total"]).toBe(6);
    expect(m["vllm:generation_tokens_total"]).toBe(120);
    expect(m["vllm:prompt_tokens_total"]).toBe(6 * 5);
    expect(m["barge_sim_busy_slot_seconds_total"]).toBeGreaterThan(0);
    const stats = sim.stats().counters;
    expect(stats.maxRunning).toBeLessThanOrEqual(2);
    expect(stats.running + stats.waiting).toBe(0);
  });

  it("logs requests with their x-request-id, echoes the header, and appends JSONL to logFile", async () => {
    const dir = mkdtempSync(join(tmpdir(), "engine-sim-test-"));
    try {
      const logFile = join(dir, "requests.jsonl");
      const sim = await start({ logFile });
      const ok = await post(sim, "/v1/chat/completions", chat("hi"), { headers: { "x-request-id": "req-123" } });
      expect(ok.headers.get("x-request-id")).toBe("req-123");
      const missing = await post(sim, "/v1/chat/completions", { ...chat("hi"), model: "nope" });
      expect(missing.headers.get("x-request-id")).toBeNull();

      const log = await getJson(sim, "/sim/requests");
      expect(log).toHaveLength(2);
      expect(log[0]).toMatchObject({ seq: 1, path: "/v1/chat/completions", model: MODEL, requestId: "req-123", status: 200 });
      expect(log[1]).toMatchObject({ seq: 2, model: "nope", requestId: null, status: 404 });
      expect(log[0].finishedAt).toBeGreaterThanOrEqual(log[0].startedAt);

      const lines = readFileSync(logFile, "utf8").trim().split("\n").map((line) => JSON.parse(line));
      expect(lines).toEqual(log);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("keeps no log when requestLog is false", async () => {
    const sim = await start({ requestLog: false });
    await post(sim, "/v1/chat/completions", chat("hi"));
    expect(await getJson(sim, "/sim/requests")).toEqual([]);
    expect(sim.stats().counters.received).toBe(1);
  });

  it("answers unknown routes 404 and wrong methods 405 in the error shape", async () => {
    const sim = await start();
    const missing = await fetch(`${sim.url}/v2/nothing`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as Json).error.code).toBe(404);
    const wrong = await fetch(`${sim.url}/v1/chat/completions`);
    expect(wrong.status).toBe(405);
    expect((await post(sim, "/v1/models", {})).status).toBe(405);
  });

  it("rejects invalid options", async () => {
    await expect(createEngineSim({ maxNumSeqs: 0 })).rejects.toThrow(/maxNumSeqs/);
    await expect(createEngineSim({ errorRate: 1.5 })).rejects.toThrow(/errorRate/);
  });
});

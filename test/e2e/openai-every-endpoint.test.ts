import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI, { NotFoundError, type APIError } from "openai";
import type { Batch } from "openai/resources";
import { toFile } from "openai/uploads";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { sweepExpiredFiles } from "@barge/api";
import { expectedBody, type SimPath } from "@barge/engine-sim";
import { modelListObject } from "@barge/api/testing";
import { sdkClient, waitForBatch } from "../support/api-harness.js";
import { createTestContext, testLog, type TestContext } from "../support/context.js";
import { listKeys, waitFor } from "../support/seed.js";
import { startServices, type Services } from "../support/services.js";

const MODEL = "barge-sim-1";
const SECRET = `whsec_${randomBytes(32).toString("base64")}`;
const FINAL = ["completed", "failed", "expired", "cancelled"];

/** The request body of the n-th line for each endpoint, in the shape that endpoint takes. */
const bodies: Record<SimPath, (n: number) => Record<string, unknown>> = {
  "/v1/chat/completions": (n) => ({ model: MODEL, messages: [{ role: "user", content: `chat number ${n}` }] }),
  "/v1/completions": (n) => ({ model: MODEL, prompt: `complete number ${n}` }),
  "/v1/embeddings": (n) => ({ model: MODEL, input: `embed number ${n}` }),
  "/v1/responses": (n) => ({ model: MODEL, input: `respond number ${n}` }),
};

interface Line {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: any } | null;
  error: { code: string; message: string } | null;
}

const parseLines = (text: string): Line[] => text.trim().split("\n").map((l) => JSON.parse(l) as Line);

/** A body without its one wall-clock field. */
function timeless(body: Record<string, unknown>): Record<string, unknown> {
  const { created: _c, created_at: _ca, ...rest } = body;
  return rest;
}

async function submit(client: OpenAI, endpoint: SimPath, lines: { custom_id: string; body: Record<string, unknown> }[], extra: Record<string, unknown> = {}) {
  const text = lines.map((l) => JSON.stringify({ custom_id: l.custom_id, method: "POST", url: endpoint, body: l.body })).join("\n") + "\n";
  const file = await client.files.create({ file: await toFile(Buffer.from(text), "in.jsonl"), purpose: "batch" });
  return client.batches.create({ input_file_id: file.id, endpoint, completion_window: "24h", ...extra });
}

/** A loopback webhook endpoint recording the event types per batch id (signatures are checked in api-webhooks). */
async function startReceiver() {
  const events: { type: string; batch: string }[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const e = JSON.parse(body) as { type: string; data: { id: string } };
      events.push({ type: e.type, batch: e.data.id });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, events, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe("every batch endpoint end to end through engine-sim", () => {
  let ctx: TestContext;
  let svc: Services;
  let client: OpenAI;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const done = new Map<SimPath, Batch>();

  beforeAll(async () => {
    receiver = await startReceiver();
    ctx = await createTestContext({
      CHUNK_SIZE: "4",
      SEGMENT_MAX_LINES: "3",
      AGENT_POLL_MS: "50",
      API_POLL_MS: "50",
      WEBHOOK_URLS: receiver.url,
      WEBHOOK_SECRET: SECRET,
    });
    // A finite decode rate makes every batch take measurable time, so its throughput is defined.
    svc = await startServices(ctx, { sim: { maxNumSeqs: 4, decodeTokensPerSec: 4000 } });
    client = sdkClient(svc.apiUrl);
  });
  afterAll(async () => {
    await svc?.stop();
    await ctx?.close();
    await receiver?.close();
  });

  test("models.list names the model the live agent serves", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([MODEL]);
    // Every field, of the right type, and nothing else (the schema is checked against the SDK's Model type).
    for (const m of models.data) modelListObject.shape.data.element.strict().parse(m);
  });

  for (const endpoint of Object.keys(bodies) as SimPath[]) {
    test(`${endpoint}: results in input order with the engine's bodies, and usage summed from them`, async () => {
      const lines = Array.from({ length: 10 }, (_, n) => ({ custom_id: `${endpoint}-${n}`, body: bodies[endpoint](n) }));
      const created = await submit(client, endpoint, lines, { output_expires_after: { anchor: "created_at", seconds: 7200 } });
      const batch = await waitForBatch(client, created.id, FINAL, 60_000);
      done.set(endpoint, batch);
      expect(batch).toMatchObject({ status: "completed", endpoint, model: MODEL, request_counts: { total: 10, completed: 10, failed: 0 }, error_file_id: null });

      const out = parseLines(await (await client.files.content(batch.output_file_id!)).text());
      expect(out.map((l) => l.custom_id)).toEqual(lines.map((l) => l.custom_id));
      out.forEach((l, i) => {
        expect(l.id).toMatch(/^batch_req_/);
        expect(l.error).toBeNull();
        expect(l.response!.status_code).toBe(200);
        expect(timeless(l.response!.body)).toEqual(timeless(expectedBody(endpoint, lines[i]!.body)));
      });

      const sum = (pick: (u: any) => number | undefined) => out.reduce((n, l) => n + (pick(l.response!.body.usage) ?? 0), 0);
      const input = sum((u) => u.prompt_tokens ?? u.input_tokens);
      const output = sum((u) => u.completion_tokens ?? u.output_tokens);
      expect(input).toBeGreaterThan(0);
      expect(batch.usage).toEqual({
        input_tokens: input,
        input_tokens_details: { cached_tokens: sum((u) => (u.prompt_tokens_details ?? u.input_tokens_details)?.cached_tokens) },
        output_tokens: output,
        output_tokens_details: { reasoning_tokens: sum((u) => (u.completion_tokens_details ?? u.output_tokens_details)?.reasoning_tokens) },
        total_tokens: sum((u) => u.total_tokens),
      });
      expect(input + output).toBe(batch.usage!.total_tokens);

      const extra = batch as unknown as { progress: { percent: number }; throughput_tokens_per_sec: number | null; estimated_completion: number | null };
      expect(extra.progress.percent).toBe(100);
      expect(extra.throughput_tokens_per_sec).toBeGreaterThan(0);
      expect(extra.estimated_completion).toBeNull();
      // output_expires_after: the output file expires after the batch's creation, not the file's.
      expect((await client.files.retrieve(batch.output_file_id!)).expires_at).toBe(batch.created_at + 7200);
    });
  }

  test("each completion is one batch.completed webhook, and records the model's throughput", async () => {
    expect(done.size).toBe(4);
    const ids = [...done.values()].map((b) => b.id);
    await waitFor("four webhooks", async () => receiver.events.length >= 4);
    expect(receiver.events.map((e) => `${e.type} ${e.batch}`).sort()).toEqual(ids.map((id) => `batch.completed ${id}`).sort());
    const recorded = await ctx.db.selectFrom("model_throughput").selectAll().execute();
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({ model: MODEL, batches: 4 });
    expect(recorded[0]!.requests_per_sec).toBeGreaterThan(0);
    expect(recorded[0]!.tokens_per_sec).toBeGreaterThan(0);
  });

  test("expired outputs are swept: files gone, and the batch no longer points at them", async () => {
    const batch = done.get("/v1/embeddings")!;
    const sweep = (at: number) => sweepExpiredFiles({ db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, log: testLog }, new Date(at * 1000));
    const created = [...done.values()].map((b) => b.created_at);
    // Each output expires 7200 s after its own batch's creation: none before the first, all four after the last.
    expect(await sweep(Math.min(...created) + 7199)).toBe(0);
    expect(await sweep(Math.max(...created) + 7201)).toBe(4);
    const gone = await client.files.retrieve(batch.output_file_id!).then(
      () => null,
      (e: APIError) => e,
    );
    expect(gone).toBeInstanceOf(NotFoundError);
    expect(await listKeys(ctx, `outputs/default/${batch.id}/output.jsonl`)).toEqual([]);
    const after = (await client.batches.retrieve(batch.id)) as unknown as { output_location: unknown; results_url: unknown; output_file_id: string };
    expect(after).toMatchObject({ output_location: null, results_url: null, output_file_id: batch.output_file_id });
  });

  test("an engine 400 is an error line with the engine's status and body, in input order", async () => {
    const lines = Array.from({ length: 7 }, (_, n) => ({
      custom_id: `mixed-${n}`,
      body: { model: MODEL, messages: [{ role: "user", content: n % 3 === 1 ? `please __sim_fail_400__ ${n}` : `fine ${n}` }] },
    }));
    const created = await submit(client, "/v1/chat/completions", lines);
    const batch = await waitForBatch(client, created.id, FINAL, 60_000);
    expect(batch).toMatchObject({ status: "completed", request_counts: { total: 7, completed: 5, failed: 2 } });

    const out = parseLines(await (await client.files.content(batch.output_file_id!)).text());
    expect(out.map((l) => l.custom_id)).toEqual(["mixed-0", "mixed-2", "mixed-3", "mixed-5", "mixed-6"]);
    const errors = parseLines(await (await client.files.content(batch.error_file_id!)).text());
    expect(errors.map((l) => l.custom_id)).toEqual(["mixed-1", "mixed-4"]);
    expect((await client.files.retrieve(batch.error_file_id!)).purpose).toBe("batch_output");
    for (const e of errors) {
      expect(Object.keys(e).sort()).toEqual(["custom_id", "error", "id", "response"]);
      expect(e.id).toMatch(/^batch_req_/);
      expect(e.error).toBeNull();
      expect(e.response!.status_code).toBe(400);
      expect(typeof e.response!.request_id).toBe("string");
      // The engine's own error body, as vLLM words it, passed through untouched.
      expect(e.response!.body.error).toMatchObject({ type: "BadRequestError", code: 400, message: expect.stringContaining("__sim_fail_400__") });
    }
  });
});

describe("a request the engine never answers", () => {
  let ctx: TestContext;
  let svc: Services;
  beforeAll(async () => {
    ctx = await createTestContext({ AGENT_POLL_MS: "50", API_POLL_MS: "50", ENGINE_TIMEOUT_MS: "200", ENGINE_MAX_ATTEMPTS: "1", SEGMENT_MAX_LINES: "2" });
    // Every request hangs far longer than the agent waits.
    svc = await startServices(ctx, { sim: { timeoutRate: 1, hangMs: 20_000 } });
  });
  afterAll(async () => {
    await svc?.stop();
    await ctx?.close();
  });

  test("is an error line with response null and error {code, message}", async () => {
    const client = sdkClient(svc.apiUrl);
    const lines = Array.from({ length: 3 }, (_, n) => ({ custom_id: `hang-${n}`, body: bodies["/v1/chat/completions"](n) }));
    const created = await submit(client, "/v1/chat/completions", lines);
    const batch = await waitForBatch(client, created.id, FINAL, 60_000);
    expect(batch).toMatchObject({ status: "completed", request_counts: { total: 3, completed: 0, failed: 3 } });
    expect(batch.usage!.total_tokens).toBe(0);

    expect(await (await client.files.content(batch.output_file_id!)).text()).toBe("");
    const errors = parseLines(await (await client.files.content(batch.error_file_id!)).text());
    expect(errors.map((l) => l.custom_id)).toEqual(["hang-0", "hang-1", "hang-2"]);
    for (const e of errors) {
      expect(Object.keys(e).sort()).toEqual(["custom_id", "error", "id", "response"]);
      expect(e.response).toBeNull();
      expect(e.error).toEqual({ code: "request_timeout", message: expect.stringContaining("200 ms") });
    }
  });
});

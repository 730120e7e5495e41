import { toFile } from "openai/uploads";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { chatLine, jsonl, startTestApi, waitForBatch, type TestApi } from "../support/api-harness.js";

type Estimates = { throughput_tokens_per_sec: number | null; estimated_completion: number | null };

describe("completion estimates", () => {
  let t: TestApi;
  beforeAll(async () => {
    // No agents: a validated batch sits in_progress with every request queued.
    t = await startTestApi({ AGENT_POLL_MS: "50", API_POLL_MS: "50" });
  });
  afterAll(async () => {
    await t?.close();
  });

  test("before any request runs, the ETA comes from the model's recorded throughput; unknown without one", async () => {
    const file = await t.client.files.create({ file: await toFile(Buffer.from(jsonl(Array.from({ length: 10 }, (_, i) => chatLine(`e${i}`)))), "in.jsonl"), purpose: "batch" });
    const create = () => t.client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const validating = (await create()) as unknown as Estimates;
    expect(validating).toMatchObject({ throughput_tokens_per_sec: null, estimated_completion: null });

    const unknown = await waitForBatch(t.client, (await create()).id, ["in_progress"]);
    expect((unknown as unknown as Estimates).estimated_completion).toBeNull();

    // What the final-state trigger records when batches of model "m" complete: 2 requests a second.
    await t.ctx.db.insertInto("model_throughput").values({ model: "m", requests_per_sec: 2, tokens_per_sec: 50, batches: 1, updated_at: new Date() }).execute();
    const before = Date.now() / 1000;
    const b = (await t.client.batches.retrieve(unknown.id)) as unknown as Estimates & { request_counts: { total: number } };
    const after = Date.now() / 1000;
    expect(b.request_counts.total).toBe(10);
    // 10 queued requests at 2 a second: 5 s from whenever the server answered.
    expect(b.estimated_completion).toBeGreaterThanOrEqual(Math.ceil(before + 5));
    expect(b.estimated_completion).toBeLessThanOrEqual(Math.ceil(after + 5));
    expect(b.throughput_tokens_per_sec).toBe(0);
  });
});

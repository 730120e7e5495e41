import { toFile } from "openai/uploads";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { call, chatLine, jsonl, startTestApi, waitForBatch, type TestApi } from "../support/api-harness.js";

// GET /v1/batches/{id} reads the batch, its summed chunk progress and its model's recorded
// throughput in one statement; the list reads them in three. Both must present the same object.

describe("GET /v1/batches/{id}", () => {
  let t: TestApi;
  beforeAll(async () => {
    // No agents: progress is written to the chunk rows by the test itself.
    t = await startTestApi({ AGENT_POLL_MS: "50", API_POLL_MS: "50", CHUNK_SIZE: "4" });
  });
  afterAll(async () => {
    await t?.close();
  });

  test("shows the summed progress of every chunk and the model's recorded speed, as the list does", async () => {
    const file = await t.client.files.create({ file: await toFile(Buffer.from(jsonl(Array.from({ length: 10 }, (_, i) => chatLine(`v${i}`)))), "in.jsonl"), purpose: "batch" });
    const created = await t.client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    await waitForBatch(t.client, created.id, ["in_progress"]);
    const progress = [
      { idx: 0, completed: 3, failed: 1, prompt_tokens: 30, completion_tokens: 7, cached_tokens: 2, reasoning_tokens: 1 },
      { idx: 1, completed: 2, failed: 0, prompt_tokens: 20, completion_tokens: 5, cached_tokens: 0, reasoning_tokens: 3 },
    ];
    for (const { idx, ...p } of progress) {
      const r = await t.ctx.db.updateTable("chunks").set({ ...p, committed: p.completed + p.failed }).where("batch_id", "=", created.id).where("idx", "=", idx).executeTakeFirst();
      expect(Number(r.numUpdatedRows)).toBe(1);
    }
    await t.ctx.db.insertInto("model_throughput").values({ model: "m", requests_per_sec: 2, tokens_per_sec: 50, batches: 1, updated_at: new Date() }).execute();

    const one = await call(t.url, `/v1/batches/${created.id}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({
      id: created.id,
      status: "in_progress",
      model: "m",
      request_counts: { total: 10, completed: 5, failed: 1 },
      progress: { total: 10, completed: 5, failed: 1, percent: 60 },
      usage: {
        input_tokens: 50,
        output_tokens: 12,
        total_tokens: 62,
        input_tokens_details: { cached_tokens: 2 },
        output_tokens_details: { reasoning_tokens: 4 },
      },
    });
    // 4 requests left at the recorded 2 a second.
    const now = Date.now() / 1000;
    expect(one.body.estimated_completion).toBeGreaterThanOrEqual(Math.floor(now + 2 - 5));
    expect(one.body.estimated_completion).toBeLessThanOrEqual(Math.ceil(now + 2));

    const list = await call(t.url, "/v1/batches?limit=100");
    const listed = (list.body.data as { id: string }[]).find((b) => b.id === created.id);
    const timeless = (b: Record<string, unknown>) => ({ ...b, estimated_completion: null, throughput_tokens_per_sec: null });
    expect(timeless(one.body)).toEqual(timeless(listed as Record<string, unknown>));

    const missing = await call(t.url, "/v1/batches/batch_nope");
    expect(missing.status).toBe(404);
  });
});

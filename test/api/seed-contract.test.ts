import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { call, jsonl, sdkClient, waitForBatch } from "../support/api-harness.js";
import { createTestContext, type TestContext } from "../support/context.js";
import { startServices, type Services } from "../support/services.js";

// The seeds' web app: plain fetch, a multipart form with `file` and `model`, lines naming a placeholder model.
const SIM_MODEL = "barge-sim-1";

function seedLine(customId: string) {
  return { custom_id: customId, method: "POST", url: "/v1/chat/completions", body: { model: "gpt-4", messages: [{ role: "user", content: `hi ${customId}` }] } };
}

function submit(url: string, lines: object[], model?: string) {
  const form = new FormData();
  if (model !== undefined) form.set("model", model);
  form.set("file", new Blob([jsonl(lines)]), "seed.jsonl");
  return call(url, "/v1/batches", { method: "POST", body: form });
}

describe("the seeds' client contract", () => {
  let ctx: TestContext;
  let svc: Services;
  beforeAll(async () => {
    ctx = await createTestContext({ CHUNK_SIZE: "3", AGENT_POLL_MS: "50", API_POLL_MS: "50" });
    svc = await startServices(ctx);
  });
  afterAll(async () => {
    await svc?.stop();
    await ctx?.close();
  });

  test("the form's model decides: lines naming gpt-4 run on it, and every answer and engine request names it", async () => {
    const lines = Array.from({ length: 7 }, (_, i) => seedLine(`s${i}`));
    const r = await submit(svc.apiUrl, lines, SIM_MODEL);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ object: "batch", status: "validating", model: SIM_MODEL, batch_id: r.body.id, total_requests: 7 });
    // Nothing is validated yet, so the counts start at zero; total_requests already has the lines.
    expect(r.body.progress).toEqual({ total: 0, completed: 0, failed: 0, percent: 0 });
    const done = await waitForBatch(sdkClient(svc.apiUrl), r.body.id, ["completed", "failed", "cancelled", "expired"], 60_000);
    expect(done).toMatchObject({ status: "completed", model: SIM_MODEL, request_counts: { total: 7, completed: 7, failed: 0 } });
    expect((done as unknown as { progress: unknown }).progress).toEqual({ total: 7, completed: 7, failed: 0, percent: 100 });

    const res = await fetch(`${svc.apiUrl}/v1/files/${done.output_file_id}/content`);
    const outLines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
    expect(outLines.map((l) => l.custom_id)).toEqual(lines.map((l) => l.custom_id));
    expect(outLines.map((l) => [l.response.status_code, l.response.body.model])).toEqual(lines.map(() => [200, SIM_MODEL]));
    const seen = svc.sim.requests().filter((e) => e.requestId?.startsWith(`${done.id}:`));
    expect(seen.length).toBe(7);
    expect(new Set(seen.map((e) => e.model))).toEqual(new Set([SIM_MODEL]));
  });

  test("the one-shot answer counts the upload's lines as it streams: blank lines and CRLF do not count, a last line without a newline does", async () => {
    const text = `\n${JSON.stringify(seedLine("a"))}\r\n   \n${JSON.stringify(seedLine("b"))}\n\n${JSON.stringify(seedLine("c"))}`;
    const form = new FormData();
    form.set("model", SIM_MODEL);
    form.set("file", new Blob([text]), "seed.jsonl");
    const r = await call(svc.apiUrl, "/v1/batches", { method: "POST", body: form });
    expect(r.status).toBe(200);
    expect([r.body.batch_id, r.body.total_requests]).toEqual([r.body.id, 3]);
    expect(r.body.id).toMatch(/^batch_/);
    const done = await waitForBatch(sdkClient(svc.apiUrl), r.body.id, ["completed", "failed"], 60_000);
    expect(done.request_counts).toEqual({ total: 3, completed: 3, failed: 0 });
  });

  test("the OpenAI-style JSON create keeps OpenAI's shape: no batch_id, no total_requests", async () => {
    const file = await sdkClient(svc.apiUrl).files.create({ file: new File([jsonl([seedLine("j")])], "j.jsonl"), purpose: "batch" });
    const r = await call(svc.apiUrl, "/v1/batches", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" }),
    });
    expect(r.status).toBe(200);
    expect(r.body).not.toHaveProperty("batch_id");
    expect(r.body).not.toHaveProperty("total_requests");
    // Without a form model the lines' model is the batch's: its chunk waits for an agent serving gpt-4.
    const running = await waitForBatch(sdkClient(svc.apiUrl), r.body.id, ["in_progress", "failed"]);
    expect(running).toMatchObject({ status: "in_progress", model: "gpt-4" });
    const chunks = await ctx.db.selectFrom("chunks").select(["model", "status"]).where("batch_id", "=", running.id).execute();
    expect(chunks).toEqual([{ model: "gpt-4", status: "queued" }]);
    expect((await call(svc.apiUrl, `/v1/batches/${running.id}/cancel`, { method: "POST" })).status).toBe(200);
  });
});

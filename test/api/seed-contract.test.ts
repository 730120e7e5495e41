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
    expect(r.body).toMatchObject({ object: "batch", status: "validating", model: SIM_MODEL });
    const done = await waitForBatch(sdkClient(svc.apiUrl), r.body.id, ["completed", "failed", "cancelled", "expired"], 60_000);
    expect(done).toMatchObject({ status: "completed", model: SIM_MODEL, request_counts: { total: 7, completed: 7, failed: 0 } });

    const res = await fetch(`${svc.apiUrl}/v1/files/${done.output_file_id}/content`);
    const outLines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
    expect(outLines.map((l) => l.custom_id)).toEqual(lines.map((l) => l.custom_id));
    expect(outLines.map((l) => [l.response.status_code, l.response.body.model])).toEqual(lines.map(() => [200, SIM_MODEL]));
    const seen = svc.sim.requests().filter((e) => e.requestId?.startsWith(`${done.id}:`));
    expect(seen.length).toBe(7);
    expect(new Set(seen.map((e) => e.model))).toEqual(new Set([SIM_MODEL]));
  });
});

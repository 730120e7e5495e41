import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { loadConfig } from "@barge/core";
import { call, jsonl, sdkClient, startBareApi, waitForBatch } from "../support/api-harness.js";
import { createTestContext, type TestContext } from "../support/context.js";
import { insertBatch, putInputFile } from "../support/seed.js";
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

/** A JSON create on an uploaded file (OpenAI's way), answered as sent. */
async function createFromFile(url: string, lines: object[]) {
  const file = await sdkClient(url).files.create({ file: new File([jsonl(lines)], "j.jsonl"), purpose: "batch" });
  return call(url, "/v1/batches", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" }),
  });
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

  /** The batch's timeline entries of the given kinds, oldest first. */
  const events = (batchId: string, kinds: string[]) =>
    ctx.db.selectFrom("batch_events").select(["kind", "data"]).where("batch_id", "=", batchId).where("kind", "in", kinds).orderBy("seq").execute();

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
    const r = await createFromFile(svc.apiUrl, [seedLine("j")]);
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

  test("DELETE cancels as POST …/cancel does and is idempotent; cancel_requested is written only when the cancel moved the batch", async () => {
    // Its lines' gpt-4 is served by no agent, so the batch waits in_progress with a queued chunk.
    const r = await createFromFile(svc.apiUrl, [seedLine("d1"), seedLine("d2")]);
    const running = await waitForBatch(sdkClient(svc.apiUrl), r.body.id, ["in_progress", "failed"]);
    expect(running.status).toBe("in_progress");
    expect(await events(running.id, ["created"])).toEqual([{ kind: "created", data: { model: null, input_file_id: running.input_file_id, retry_of: null } }]);

    const first = await call(svc.apiUrl, `/v1/batches/${running.id}`, { method: "DELETE" });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ id: running.id, object: "batch", status: "cancelling", cancelled_at: null });
    expect(first.body.cancelling_at).toEqual(expect.any(Number));
    const chunks = await ctx.db.selectFrom("chunks").select("status").where("batch_id", "=", running.id).execute();
    expect(chunks).toEqual([{ status: "cancelled" }]);

    const again = await call(svc.apiUrl, `/v1/batches/${running.id}`, { method: "DELETE" });
    expect(again.status).toBe(200);
    expect(again.body.cancelling_at).toBe(first.body.cancelling_at);
    const cancelled = await waitForBatch(sdkClient(svc.apiUrl), running.id, ["cancelled"]);
    const final = await call(svc.apiUrl, `/v1/batches/${running.id}`, { method: "DELETE" });
    expect([final.status, final.body.status, final.body.cancelled_at]).toEqual([200, "cancelled", cancelled.cancelled_at]);
    // OpenAI's cancel keeps its answer for a final batch.
    const post = await call(svc.apiUrl, `/v1/batches/${running.id}/cancel`, { method: "POST" });
    expect([post.status, post.body.error.code]).toEqual([409, "batch_not_cancellable"]);
    expect(await events(running.id, ["cancel_requested"])).toEqual([{ kind: "cancel_requested", data: { status: "cancelling" } }]);
  });

  test("POST …/cancel writes cancel_requested once too; DELETE (and /failed) of an unknown or another tenant's batch is 404 and moves nothing", async () => {
    const r = await createFromFile(svc.apiUrl, [seedLine("p1")]);
    await waitForBatch(sdkClient(svc.apiUrl), r.body.id, ["in_progress"]);
    for (let i = 0; i < 2; i++) expect((await call(svc.apiUrl, `/v1/batches/${r.body.id}/cancel`, { method: "POST" })).status).toBe(200);
    expect(await events(r.body.id, ["cancel_requested"])).toEqual([{ kind: "cancel_requested", data: { status: "cancelling" } }]);

    const missing = await call(svc.apiUrl, "/v1/batches/batch_000000000000000000000000", { method: "DELETE" });
    expect([missing.status, missing.body.error.code, missing.body.error.param]).toEqual([404, "not_found", "batch_id"]);
    const { fileId } = await putInputFile(ctx, jsonl([seedLine("o")]), "other");
    const theirs = await insertBatch(ctx.db, { id: "batch_0therten4ntb4tch00000000", tenant: "other", input_file_id: fileId, status: "in_progress" });
    const denied = await call(svc.apiUrl, `/v1/batches/${theirs.id}`, { method: "DELETE" });
    expect([denied.status, denied.body.error.code]).toEqual([404, "not_found"]);
    const theirFailed = await call(svc.apiUrl, `/v1/batches/${theirs.id}/failed`);
    expect([theirFailed.status, theirFailed.body.error.code]).toEqual([404, "not_found"]);
    const row = await ctx.db.selectFrom("batches").select("status").where("id", "=", theirs.id).executeTakeFirstOrThrow();
    expect(row.status).toBe("in_progress");
    expect(await events(theirs.id, ["cancel_requested"])).toEqual([]);
  });

  test("/failed is /errors under the seeds' name; a retry's created entry names the batch it re-runs, and it keeps the form model's override", async () => {
    // The engine refuses an empty messages list (400), so that request fails and can be retried.
    const bad = { ...seedLine("bad"), body: { model: "gpt-4", messages: [] } };
    const r = await submit(svc.apiUrl, [seedLine("ok"), bad], SIM_MODEL);
    const done = await waitForBatch(sdkClient(svc.apiUrl), r.body.id, ["completed", "failed"], 60_000);
    expect(done.request_counts).toEqual({ total: 2, completed: 1, failed: 1 });
    const failed = await fetch(`${svc.apiUrl}/v1/batches/${done.id}/failed?limit=5`);
    const errors = await fetch(`${svc.apiUrl}/v1/batches/${done.id}/errors?limit=5`);
    expect([failed.status, failed.headers.get("content-type")]).toEqual([errors.status, errors.headers.get("content-type")]);
    const body = await failed.text();
    expect(body).toBe(await errors.text());
    expect(JSON.parse(body)).toMatchObject({ object: "list", has_more: false, first_id: "bad", data: [{ custom_id: "bad", line: 2, status_code: 400 }] });
    const unknown = await call(svc.apiUrl, "/v1/batches/batch_000000000000000000000000/failed");
    expect([unknown.status, unknown.body.error.code]).toEqual([404, "not_found"]);
    const retry = await call(svc.apiUrl, `/v1/batches/${done.id}/retry`, { method: "POST" });
    expect([retry.status, retry.body.retry_of, retry.body.model]).toEqual([200, done.id, SIM_MODEL]);
    expect(await events(retry.body.id, ["created"])).toEqual([{ kind: "created", data: { model: SIM_MODEL, input_file_id: retry.body.input_file_id, retry_of: done.id } }]);
    const again = await waitForBatch(sdkClient(svc.apiUrl), retry.body.id, ["completed", "failed"], 60_000);
    expect(again).toMatchObject({ status: "completed", model: SIM_MODEL, request_counts: { total: 1, completed: 0, failed: 1 } });
  });

  test("the list filters by one or more comma-separated statuses, pages with after, and names a bad status", async () => {
    const t = await startBareApi();
    try {
      const { fileId } = await putInputFile(t.ctx, jsonl([seedLine("x")]));
      const statuses = ["completed", "failed", "in_progress", "cancelled"] as const;
      const ids = Array.from({ length: 12 }, (_, i) => `batch_${String(i).padStart(24, "0")}`);
      for (const [i, id] of ids.entries()) await insertBatch(t.ctx.db, { id, input_file_id: fileId, status: statuses[i % 4]! });
      const { fileId: theirFile } = await putInputFile(t.ctx, jsonl([seedLine("y")]), "other");
      await insertBatch(t.ctx.db, { id: `batch_${"z".repeat(24)}`, tenant: "other", input_file_id: theirFile, status: "completed" });
      /** The ids of the batches in `want`, newest first. */
      const newest = (want: string[]) => ids.filter((_, i) => want.includes(statuses[i % 4]!)).reverse();

      const both = await call(t.url, "/v1/batches?status=completed,failed&limit=10");
      expect(both.status).toBe(200);
      expect(both.body.data.map((b: { id: string }) => b.id)).toEqual(newest(["completed", "failed"]));
      expect(both.body.data.map((b: { status: string }) => b.status)).toEqual(["failed", "completed", "failed", "completed", "failed", "completed"]);
      expect(both.body.has_more).toBe(false);

      const walked: string[] = [];
      let after = "";
      for (let page = 0; page < 3; page++) {
        const r = await call(t.url, `/v1/batches?status=completed,failed&limit=2${after}`);
        walked.push(...r.body.data.map((b: { id: string }) => b.id));
        expect(r.body.has_more).toBe(page < 2);
        after = `&after=${r.body.last_id}`;
      }
      expect(walked).toEqual(newest(["completed", "failed"]));

      const one = await call(t.url, "/v1/batches?status=completed,%20completed");
      expect(one.body.data.map((b: { id: string }) => b.id)).toEqual(newest(["completed"]));

      const bad = await call(t.url, "/v1/batches?status=completed,bogus");
      expect(bad.status).toBe(400);
      expect(bad.body.error).toMatchObject({ type: "invalid_request_error", param: "status", code: "invalid_value" });
      expect(bad.body.error.message).toContain("'bogus' is not a batch status; supported values are 'validating', 'failed'");
      const empty = await call(t.url, "/v1/batches?status=completed,");
      expect([empty.status, empty.body.error.message]).toEqual([400, expect.stringContaining("'' is not a batch status")]);
      const many = await call(t.url, `/v1/batches?status=${Array(9).fill("completed").join(",")}`);
      expect([many.status, many.body.error.param, many.body.error.message]).toEqual([400, "status", "Invalid value for 'status': at most 8 statuses are allowed, got 9."]);
    } finally {
      await t.close();
    }
  });
});

test("the defaults follow the seeds: 200,000 requests per batch and 500 MB per file", () => {
  const config = loadConfig({});
  expect([config.MAX_REQUESTS_PER_BATCH, config.MAX_FILE_BYTES]).toEqual([200_000, 500 * 1024 * 1024]);
});

import { serve } from "@hono/node-server";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { toFile } from "openai";
import { describe, expect, it } from "vitest";
import { createApp } from "@barge/api";
import { BATCH_STATUSES, createDb, registerAgent } from "@barge/core";
import { freePort } from "@barge/devstack";
import { sdkClient, startBareApi } from "../support/api-harness.js";
import { testLog } from "../support/context.js";
import { checkMetrics, prometheusTools } from "../support/prometheus.js";
import { chatLine, seedBatch } from "../support/seed.js";
import { startServices } from "../support/services.js";
import { suiteResources } from "../support/suite-resources.js";

const tools = prometheusTools();

/** Every sample of an exposition, `name{labels}` to value. */
function series(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const cut = line.lastIndexOf(" ");
    out.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return out;
}

/** The samples whose name starts with `prefix`, as an object for exact comparison. */
function only(text: string, prefix: string): Record<string, number> {
  return Object.fromEntries([...series(text)].filter(([k]) => k.startsWith(prefix)));
}

const zeroBatches = Object.fromEntries(BATCH_STATUSES.map((s) => [`barge_batches{status="${s}"}`, 0]));

const scrape = async (url: string, token?: string) => {
  const r = await fetch(`${url}/metrics`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  return { status: r.status, headers: r.headers, text: await r.text() };
};

describe(`api: GET /metrics${tools.missing ? ` (promtool checks skipped: ${tools.missing})` : ""}`, () => {
  const suite = suiteResources();

  it("after a batch through the SDK, API, agent and engine-sim: the queue, fleet, usage and HTTP series, and promtool check metrics passes", { timeout: 90_000 }, async () => {
    const ctx = await suite.context({ CHUNK_SIZE: "4", AGENT_POLL_MS: "50", API_POLL_MS: "50" });
    const svc = await startServices(ctx);
    suite.cleanup(() => svc.stop());
    const client = sdkClient(svc.apiUrl);
    const lines = Array.from({ length: 10 }, (_, i) => JSON.stringify(chatLine(`m-${i}`, `metrics ${i}`, { max_tokens: 4 }))).join("\n") + "\n";
    const file = await client.files.create({ file: await toFile(Buffer.from(lines), "in.jsonl"), purpose: "batch" });
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    let polls = 0;
    for (let b = batch; b.status !== "completed"; polls++) {
      expect(["validating", "in_progress", "finalizing"]).toContain(b.status);
      await new Promise((r) => setTimeout(r, 50));
      b = await client.batches.retrieve(batch.id);
    }
    expect((await fetch(`${svc.apiUrl}/no/such/route`)).status).toBe(404);
    // The usage ledger, as committed for two tenants on two days (the counters sum it per model).
    await ctx.db
      .insertInto("tenant_usage")
      .values([
        { day: "2026-12-01", tenant: "team-a", model: "ledger-model", batch_id: "batch_a1", requests: 7, failed: 2, prompt_tokens: 70, completion_tokens: 21, cached_tokens: 5, reasoning_tokens: 0 },
        { day: "2026-12-02", tenant: "team-b", model: "ledger-model", batch_id: "batch_b1", requests: 5, failed: 0, prompt_tokens: 50, completion_tokens: 15, cached_tokens: 0, reasoning_tokens: 3 },
      ])
      .execute();

    const r = await scrape(svc.apiUrl);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(only(r.text, "barge_batches")).toEqual({ ...zeroBatches, 'barge_batches{status="completed"}': 1 });
    expect(only(r.text, "barge_")).toMatchObject({
      barge_database_up: 1,
      barge_queued_requests: 0,
      barge_active_batches: 0,
      barge_live_agents: 1,
      barge_oldest_waiting_batch_seconds: 0,
      barge_chunk_failures_max: 0,
      'barge_requests_total{model="ledger-model",outcome="completed"}': 10,
      'barge_requests_total{model="ledger-model",outcome="failed"}': 2,
      'barge_tokens_total{model="ledger-model",direction="input"}': 120,
      'barge_tokens_total{model="ledger-model",direction="output"}': 36,
      'barge_http_requests_total{method="POST",route="/v1/files",status="200"}': 1,
      'barge_http_requests_total{method="POST",route="/v1/batches",status="200"}': 1,
      'barge_http_requests_total{method="GET",route="/v1/batches/:id",status="200"}': polls,
      'barge_http_requests_total{method="GET",route="/*",status="404"}': 1,
      'barge_http_request_duration_seconds_count{method="POST",route="/v1/files"}': 1,
      'barge_http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/v1/batches"}': 1,
    });
    // Whatever else the ledger holds (the agent's own commits, once they record usage) sums the same way.
    const ledger = await ctx.db
      .selectFrom("tenant_usage")
      .select((eb) => ["model", eb.fn.sum<string>("requests").as("requests"), eb.fn.sum<string>("failed").as("failed")])
      .groupBy("model")
      .execute();
    const counted = only(r.text, "barge_requests_total");
    expect(Object.keys(counted)).toHaveLength(ledger.length * 2);
    for (const row of ledger) {
      expect(counted[`barge_requests_total{model="${row.model}",outcome="failed"}`]).toBe(Number(row.failed));
      expect(counted[`barge_requests_total{model="${row.model}",outcome="completed"}`]).toBe(Number(row.requests) - Number(row.failed));
    }
    expect(r.text).toContain("# TYPE barge_requests_total counter\n");
    expect(r.text).toContain("# TYPE barge_http_request_duration_seconds histogram\n");
    expect(r.text).toContain("# TYPE process_cpu_seconds_total counter\n");
    expect(r.text).not.toContain("nodejs_active_handles_total");
    // The scrape itself is counted from the next one on.
    expect(only((await scrape(svc.apiUrl)).text, 'barge_http_requests_total{method="GET",route="/metrics"')).toEqual({
      'barge_http_requests_total{method="GET",route="/metrics",status="200"}': 1,
    });
    if (tools.missing !== undefined) return;
    expect(checkMetrics(tools.promtool, r.text)).toEqual({ code: 0, output: "" });
  });

  it("queue figures with work waiting: queued requests, the oldest batch's age, live agents only, the most failed chunk", async () => {
    const api = await startBareApi({ CHUNK_SIZE: "4" });
    suite.cleanup(() => api.close());
    const { batchId } = await seedBatch(api.ctx, Array.from({ length: 10 }, (_, i) => chatLine(`w-${i}`, `wait ${i}`)));
    await api.ctx.db.updateTable("chunks").set({ batch_created_at: new Date(Date.now() - 600_000) }).where("batch_id", "=", batchId).execute();
    await api.ctx.db.updateTable("chunks").set({ failures: 2 }).where("batch_id", "=", batchId).where("idx", "=", 1).execute();
    await registerAgent(api.ctx.db, { id: "live", hostname: "node-a", models: ["barge-sim-1"] });
    await registerAgent(api.ctx.db, { id: "gone", hostname: "node-b", models: ["barge-sim-1"] });
    await api.ctx.db.updateTable("agents").set({ last_seen_at: new Date(Date.now() - 3600_000) }).where("id", "=", "gone").execute();

    const r = await scrape(api.url);
    const got = only(r.text, "barge_");
    expect(only(r.text, "barge_batches")).toEqual({ ...zeroBatches, 'barge_batches{status="in_progress"}': 1 });
    expect(got).toMatchObject({ barge_database_up: 1, barge_queued_requests: 10, barge_active_batches: 1, barge_live_agents: 1, barge_chunk_failures_max: 2 });
    // Ten minutes old, read a moment later.
    expect(got.barge_oldest_waiting_batch_seconds).toBeGreaterThanOrEqual(600);
    expect(got.barge_oldest_waiting_batch_seconds).toBeLessThan(660);
    // No usage committed yet: the counters have no series.
    expect(Object.keys(got).filter((k) => k.startsWith("barge_requests_total") || k.startsWith("barge_tokens_total"))).toEqual([]);
  });

  it("METRICS_TOKEN set: 401 without it, with a wrong one or with the API key; 200 with it. Tenant keys never apply to /metrics", async () => {
    const api = await startBareApi({ METRICS_TOKEN: "scrape-secret", BARGE_API_KEY: "tenant-key" });
    suite.cleanup(() => api.close());
    const missing = await scrape(api.url);
    expect([missing.status, missing.headers.get("www-authenticate"), JSON.parse(missing.text)]).toEqual([
      401,
      'Bearer realm="metrics"',
      { error: { message: "Send METRICS_TOKEN as 'Authorization: Bearer <token>'.", type: "invalid_request_error", param: null, code: "invalid_metrics_token" } },
    ]);
    for (const wrong of ["scrape-secre", "tenant-key"]) {
      const r = await scrape(api.url, wrong);
      expect([r.status, JSON.parse(r.text).error.message]).toEqual([401, "Incorrect metrics token."]);
    }
    const ok = await scrape(api.url, "scrape-secret");
    expect([ok.status, series(ok.text).get("barge_database_up")]).toEqual([200, 1]);

    // No METRICS_TOKEN: open, like /health, although the API itself wants a key.
    const open = await startBareApi({ BARGE_API_KEY: "tenant-key" });
    suite.cleanup(() => open.close());
    expect((await scrape(open.url)).status).toBe(200);
    expect((await fetch(`${open.url}/v1/batches`)).status).toBe(401);
  });

  it("Postgres unreachable: still 200 with barge_database_up 0, the HTTP and process series, and no queue figures", async () => {
    const ctx = await suite.context();
    const db = createDb({ url: `postgres://barge:barge@127.0.0.1:${await freePort()}/barge`, schema: "public" });
    suite.cleanup(() => db.destroy());
    const app = createApp({ db, s3: ctx.s3, bucket: ctx.bucket, config: ctx.config, log: testLog });
    const server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s as Server)) as Server;
    });
    suite.cleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect((await fetch(`${url}/livez`)).status).toBe(200);

    const r = await scrape(url);
    expect(r.status).toBe(200);
    expect(only(r.text, "barge_")).toEqual({
      barge_database_up: 0,
      'barge_http_requests_total{method="GET",route="/livez",status="200"}': 1,
      'barge_http_request_duration_seconds_count{method="GET",route="/livez"}': 1,
      'barge_http_request_duration_seconds_sum{method="GET",route="/livez"}': expect.any(Number),
      ...Object.fromEntries(
        [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, "+Inf"].map((le) => [`barge_http_request_duration_seconds_bucket{le="${le}",method="GET",route="/livez"}`, expect.any(Number)]),
      ),
    });
    expect(r.text).toContain("# TYPE process_resident_memory_bytes gauge\n");
    if (tools.missing !== undefined) return;
    expect(checkMetrics(tools.promtool, r.text)).toEqual({ code: 0, output: "" });
  });
});

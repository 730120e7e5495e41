import { serve } from "@hono/node-server";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createApp } from "@barge/api";
import { claimChunk, createDb, createS3Client, registerAgent, type GpuReading } from "@barge/core";
import { freePort } from "@barge/devstack";
import { describe, expect, it } from "vitest";
import { testLog } from "../support/context.js";
import type { TestContext } from "../support/context.js";
import { faultSuite } from "../support/fault-suite.js";
import { embeddedS3rver } from "../support/s3-servers.js";
import { chatLine, seedBatch } from "../support/seed.js";

// Stand-in GPU readings (this machine has no GPU), as an agent's nvidia-smi heartbeat records them.
const cool: GpuReading = { index: 0, name: "NVIDIA H100 80GB HBM3", utilization_percent: 97, memory_used_mib: 79001, memory_total_mib: 81559, temperature_c: 71, power_w: 612.34 };
const hot: GpuReading = { index: 1, name: "NVIDIA H100 80GB HBM3", utilization_percent: null, memory_used_mib: 40000, memory_total_mib: 80000, temperature_c: 91, power_w: null };

const get = async (url: string, path: string, key?: string) => {
  const r = await fetch(url + path, key ? { headers: { authorization: `Bearer ${key}` } } : {});
  const text = await r.text();
  return { status: r.status, text, body: JSON.parse(text) as Record<string, any> };
};

/** One worker holding a lease on a batch, one paused for a hot GPU, one that stopped beating long ago. */
async function fleet(ctx: TestContext) {
  const { batchId } = await seedBatch(ctx, Array.from({ length: 10 }, (_, i) => chatLine(`h-${i}`, `health ${i}`)));
  await registerAgent(ctx.db, { id: "worker-1", hostname: "node-a", models: ["barge-sim-1"], gpus: [cool], kvCacheUsage: 0.42, inFlight: 3, concurrencyLimit: 64, claimsPausedReason: null });
  await registerAgent(ctx.db, { id: "worker-2", hostname: "node-b", models: ["barge-sim-1"], gpus: [hot], kvCacheUsage: null, inFlight: 0, concurrencyLimit: 32, claimsPausedReason: "gpu 1 at 91 °C (limit 85)" });
  await registerAgent(ctx.db, { id: "gone", hostname: "node-c", models: ["barge-sim-1"], gpus: [cool] });
  await ctx.db.updateTable("agents").set({ last_seen_at: new Date(Date.now() - 3600_000) }).where("id", "=", "gone").execute();
  const chunk = await claimChunk(ctx.db, { agentId: "worker-1", models: ["barge-sim-1"], leaseSeconds: 300 });
  expect(chunk?.idx).toBe(0);
  return batchId;
}

const limits = { max_requests_per_job: 200_000, max_queue_depth: 1, max_total_queued_requests: 10_000_000, max_file_bytes: 500 * 1024 * 1024 };
const reasons = ["agent worker-2 paused: gpu 1 at 91 °C (limit 85)", "queue full: active batches at 1 (limit 1)"];
const gpus = [
  { agent_id: "worker-1", ...cool, memory_percent: 96.9, healthy: true },
  { agent_id: "worker-2", ...hot, memory_percent: 50, healthy: false },
];

describe("GET /health, /livez, /readyz", () => {
  const suite = faultSuite();

  it("shows every field with no API key configured: status, reasons, GPUs, live workers with their batches, queue, limits", async () => {
    const ctx = await suite.context({ CHUNK_SIZE: "4", MAX_ACTIVE_BATCHES: "1" });
    const batchId = await fleet(ctx);
    const api = await suite.api(ctx);
    const r = await get(api.url, "/health");
    expect(r.status).toBe(200);
    const { workers, queue, ...rest } = r.body;
    expect(rest).toEqual({ status: "degraded", reasons, gpu: gpus, limits });
    expect(workers.map((w: Record<string, unknown>) => ({ ...w, heartbeat_age_seconds: typeof w.heartbeat_age_seconds }))).toEqual([
      { id: "worker-1", host: "node-a", models: ["barge-sim-1"], status: "processing", paused_reason: null, current_batch_ids: [batchId], heartbeat_age_seconds: "number", in_flight: 3, concurrency_limit: 64, kv_cache_usage: 0.42 },
      { id: "worker-2", host: "node-b", models: ["barge-sim-1"], status: "paused", paused_reason: "gpu 1 at 91 °C (limit 85)", current_batch_ids: [], heartbeat_age_seconds: "number", in_flight: 0, concurrency_limit: 32, kv_cache_usage: null },
    ]);
    for (const w of workers) expect(w.heartbeat_age_seconds).toBeGreaterThanOrEqual(0);
    // 10 requests in 3 chunks, none committed; one batch active, at its limit of 1.
    expect({ ...queue, oldest_waiting_seconds: typeof queue.oldest_waiting_seconds }).toEqual({
      active_jobs: 1,
      max_queue_depth: 1,
      queue_available: false,
      total_queued_requests: 10,
      oldest_waiting_seconds: "number",
    });
    expect(queue.oldest_waiting_seconds).toBeGreaterThanOrEqual(0);
  });

  it("with an API key configured: no 401; a caller without the key sees status, GPUs, queue and limits, never workers or batch ids", async () => {
    const ctx = await suite.context({ CHUNK_SIZE: "4", MAX_ACTIVE_BATCHES: "1" });
    const batchId = await fleet(ctx);
    const api = await suite.api({ ...ctx, config: { ...ctx.config, BARGE_API_KEY: "sekret" } });
    for (const key of [undefined, "wrong"]) {
      const r = await get(api.url, "/health", key);
      expect(r.status).toBe(200);
      expect(Object.keys(r.body).sort()).toEqual(["gpu", "limits", "queue", "reasons", "status"]);
      expect(r.body).toMatchObject({ status: "degraded", reasons, gpu: gpus, limits, queue: { active_jobs: 1, total_queued_requests: 10 } });
      expect(r.text).not.toContain(batchId);
    }
    const keyed = await get(api.url, "/health", "sekret");
    expect(keyed.status).toBe(200);
    expect(keyed.body.workers.map((w: { id: string; current_batch_ids: string[] }) => [w.id, w.current_batch_ids])).toEqual([["worker-1", [batchId]], ["worker-2", []]]);
  });

  it("is healthy with a live, claiming agent and room in the queue", async () => {
    const ctx = await suite.context();
    await registerAgent(ctx.db, { id: "solo", hostname: "node-a", models: ["m"], gpus: [cool] });
    const api = await suite.api(ctx);
    const r = await get(api.url, "/health");
    expect([r.status, r.body.status, r.body.reasons, r.body.queue.queue_available, r.body.queue.oldest_waiting_seconds]).toEqual([200, "healthy", [], true, null]);
    expect(r.body.workers.map((w: { status: string }) => w.status)).toEqual(["idle"]);
  });

  it("/livez answers ok; /readyz is 200 while Postgres and the bucket answer, 503 naming the bucket once its S3 server is stopped, as is /health", async () => {
    const ctx = await suite.context();
    const own = await embeddedS3rver();
    suite.cleanup(() => own.stop());
    const s3 = createS3Client({ ...own.info, forcePathStyle: true });
    suite.cleanup(() => s3.destroy());
    const api = await suite.api({ ...ctx, s3, bucket: own.info.bucket }, s3);
    expect(await get(api.url, "/livez")).toMatchObject({ status: 200, body: { status: "ok" } });
    expect(await get(api.url, "/readyz")).toMatchObject({ status: 200, body: { status: "ready", checks: { database: "ok", bucket: "ok" } } });

    await own.stop();
    expect(await get(api.url, "/readyz")).toMatchObject({ status: 503, body: { status: "unready", checks: { database: "ok", bucket: "unreachable" } } });
    const health = await get(api.url, "/health");
    expect([health.status, health.body.status, health.body.reasons]).toEqual([503, "unhealthy", ["bucket unreachable", "no live agent"]]);
    // The process itself is up.
    expect(await get(api.url, "/livez")).toMatchObject({ status: 200, body: { status: "ok" } });
  });

  it("with Postgres unreachable (nothing listens where DATABASE_URL points): /health and /readyz are 503 naming the database; /livez is still ok", async () => {
    const ctx = await suite.context();
    const db = createDb({ url: `postgres://barge:barge@127.0.0.1:${await freePort()}/barge`, schema: "public" });
    suite.cleanup(() => db.destroy());
    const app = createApp({ db, s3: ctx.s3, bucket: ctx.bucket, config: ctx.config, log: testLog });
    const server = await new Promise<Server>((resolve) => {
      const srv = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(srv as Server)) as Server;
    });
    suite.cleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const health = await get(url, "/health");
    expect(health.status).toBe(503);
    // No key can be checked without Postgres, so the caller is anonymous: no `workers`.
    expect(health.body).toEqual({ status: "unhealthy", reasons: ["database unreachable"], gpu: [], queue: null, limits: { ...limits, max_queue_depth: 1000 } });
    expect(await get(url, "/readyz")).toMatchObject({ status: 503, body: { status: "unready", checks: { database: "unreachable", bucket: "ok" } } });
    expect(await get(url, "/livez")).toMatchObject({ status: 200, body: { status: "ok" } });
    // Any other route: a 503 that says to come back, never a 500 that suggests a bug.
    const res = await fetch(`${url}/v1/batches`);
    expect([res.status, res.headers.get("retry-after")]).toEqual([503, "5"]);
    expect(((await res.json()) as { error: { code: string; type: string } }).error).toMatchObject({ code: "service_unavailable", type: "server_error" });
  });
});

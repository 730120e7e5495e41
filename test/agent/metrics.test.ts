import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { freePort } from "@barge/devstack";
import { claimChunk, loadConfig } from "@barge/core";
import { checkMetrics, prometheusTools } from "../support/prometheus.js";
import { chatLine, seedBatch, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

const TOTAL = 30;
const tools = prometheusTools();
// Two GPUs as nvidia-smi prints them (`--format=csv,noheader,nounits`); the second reports no utilization or power.
const GPU_CSV = "0, NVIDIA H100 80GB HBM3, 93, 71234, 81559, 64, 402.17\n1, NVIDIA H100 80GB HBM3, [N/A], 1024, 81559, 58, [N/A]\n";
const MIB = 1024 * 1024;
const FAILING = [3, 14, 25];

/** The agent's own unlabelled samples of a Prometheus text body, by name (the process metrics left out). */
function samples(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith("barge_agent_")) continue;
    const [name, value] = line.split(" ");
    out[name!] = Number(value);
  }
  return out;
}

describe("agent: Prometheus metrics endpoint", () => {
  const suite = suiteResources();

  it("is off unless AGENT_METRICS_PORT is set, and binds loopback by default", () => {
    const config = loadConfig({});
    expect([config.AGENT_METRICS_PORT, config.AGENT_METRICS_HOST]).toEqual([0, "127.0.0.1"]);
  });

  it("reports the limit, in-flight requests, engine load, results and chunks over HTTP", { timeout: 60_000 }, async () => {
    const port = await freePort();
    const ctx = await suite.context({ CHUNK_SIZE: "10", SEGMENT_MAX_LINES: "2", AGENT_CONCURRENCY: "4", AGENT_MAX_CONCURRENCY: "4", AGENT_POLL_MS: "50", API_POLL_MS: "50", AGENT_METRICS_POLL_MS: "50", AGENT_METRICS_PORT: String(port) });
    // ~400 ms a request, so four are in flight whenever the endpoint is read mid-run.
    const sim = await suite.sim({ models: ["barge-sim-1"], decodeTokensPerSec: 20 });
    const lines = Array.from({ length: TOTAL }, (_, i) => chatLine(`m-${i}`, FAILING.includes(i) ? `__sim_fail_400__ ${i}` : `measure ${i}`, { max_tokens: 8 }));
    const { batchId } = await seedBatch(ctx, lines);
    const agent = suite.agent(ctx, { engineUrl: sim.url, agentId: "measured" });
    await agent.start();
    const url = `http://127.0.0.1:${port}/metrics`;

    // Mid-run: read the endpoint until the batch completes; the limit is in use and the engine's
    // gauges were read while it ran requests. (Samples, not one lucky read: on a loaded machine the
    // engine gauge and the agent's own count move at different moments.)
    const seen: Record<string, number>[] = [];
    await waitFor("the batch to complete", async () => {
      seen.push(samples(await (await fetch(url)).text()));
      return (await ctx.db.selectFrom("batches").select("status").where("id", "=", batchId).executeTakeFirstOrThrow()).status === "completed";
    });
    const during = (name: string) => seen.map((m) => m[name]!);
    expect(new Set(during("barge_agent_concurrency_limit"))).toEqual(new Set([4]));
    expect(Math.max(...during("barge_agent_requests_in_flight"))).toBe(4);
    expect(Math.max(...during("barge_agent_engine_requests_running"))).toBeGreaterThan(0);
    expect(Math.max(...during("barge_agent_engine_requests_running"))).toBeLessThanOrEqual(4);
    expect(Math.max(...during("barge_agent_engine_requests_waiting"))).toBe(0);
    expect(Math.max(...during("barge_agent_chunk_runs_active"))).toBeGreaterThanOrEqual(1);
    expect(Math.max(...during("barge_agent_chunk_runs_active"))).toBeLessThanOrEqual(2);

    const res = await waitFor("the engine to read idle", async () => {
      const r = await fetch(url);
      const text = await r.text();
      return samples(text).barge_agent_engine_requests_running === 0 ? { r, text } : undefined;
    });
    expect(res.r.status).toBe(200);
    expect(res.r.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(samples(res.text)).toEqual({
      barge_agent_concurrency_limit: 4,
      barge_agent_requests_in_flight: 0,
      barge_agent_chunk_runs_active: 0,
      barge_agent_engine_requests_running: 0,
      barge_agent_engine_requests_waiting: 0,
      barge_agent_engine_kv_cache_usage_ratio: 0,
      barge_agent_claims_paused: 0,
      barge_agent_requests_completed_total: TOTAL - FAILING.length,
      barge_agent_requests_failed_total: FAILING.length,
      barge_agent_chunks_claimed_total: 3,
      barge_agent_chunks_completed_total: 3,
      barge_agent_chunks_rescued_total: 0,
    });
    expect(res.text).toContain("# TYPE barge_agent_requests_completed_total counter\n");
    expect(res.text).toContain("# TYPE barge_agent_concurrency_limit gauge\n");
    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);

    // Stopping the agent closes the endpoint.
    await agent.stop({ graceful: true });
    await expect(fetch(url)).rejects.toThrow();
  });
});

describe(`agent: its exposition passes promtool check metrics${tools.missing ? ` (skipped: ${tools.missing})` : ""}`, () => {
  const suite = suiteResources();

  it.skipIf(tools.missing !== undefined)("after a rescued chunk and a batch, with GPU readings from a stand-in nvidia-smi (no GPU here)", { timeout: 60_000 }, async () => {
    // This machine has no GPU: a stand-in nvidia-smi first on PATH prints recorded CSV.
    const dir = suite.tempDir("stand-in-nvidia-smi-");
    writeFileSync(join(dir, "nvidia-smi"), `#!/bin/sh\n# Stand-in for nvidia-smi: prints recorded CSV.\nprintf '${GPU_CSV.replace(/\n/g, "\\n")}'\n`);
    chmodSync(join(dir, "nvidia-smi"), 0o755);
    const path = process.env.PATH;
    process.env.PATH = `${dir}:${path}`;
    suite.cleanup(() => void (process.env.PATH = path));

    const port = await freePort();
    const ctx = await suite.context({ CHUNK_SIZE: "5", AGENT_POLL_MS: "50", AGENT_METRICS_POLL_MS: "50", AGENT_METRICS_PORT: String(port), GPU_MAX_TEMP_C: "85" });
    const sim = await suite.sim({ models: ["barge-sim-1"] });
    const { batchId } = await seedBatch(ctx, Array.from({ length: 10 }, (_, i) => chatLine(`p-${i}`, `promtool ${i}`, { max_tokens: 4 })));
    // An agent that crashed holding chunk 0: its lease has lapsed, so the new agent's housekeeping rescues it.
    expect((await claimChunk(ctx.db, { agentId: "crashed", models: ["barge-sim-1"], leaseSeconds: 30 }))?.idx).toBe(0);
    await ctx.db.updateTable("chunks").set({ lease_expires_at: new Date(Date.now() - 60_000) }).where("batch_id", "=", batchId).where("idx", "=", 0).execute();

    const agent = suite.agent(ctx, { engineUrl: sim.url, agentId: "linted" });
    await agent.start();
    await waitFor("the batch to complete", async () => (await ctx.db.selectFrom("batches").select("status").where("id", "=", batchId).executeTakeFirstOrThrow()).status === "completed");
    const url = `http://127.0.0.1:${port}/metrics`;
    const text = await waitFor("the engine gauges to read idle", async () => {
      const t = await (await fetch(url)).text();
      return samples(t).barge_agent_engine_requests_running === 0 ? t : undefined;
    });

    if (tools.missing === undefined) expect(checkMetrics(tools.promtool, text)).toEqual({ code: 0, output: "" });
    expect(samples(text)).toMatchObject({ barge_agent_chunks_rescued_total: 1, barge_agent_chunks_claimed_total: 2, barge_agent_chunks_completed_total: 2, barge_agent_claims_paused: 0 });
    const gpuLines = text.split("\n").filter((l) => l.startsWith("barge_gpu_"));
    const h100 = 'name="NVIDIA H100 80GB HBM3"';
    expect(gpuLines).toEqual([
      `barge_gpu_temperature_limit_celsius 85`,
      `barge_gpu_temperature_celsius{gpu="0",${h100}} 64`,
      `barge_gpu_temperature_celsius{gpu="1",${h100}} 58`,
      `barge_gpu_utilization_ratio{gpu="0",${h100}} 0.93`,
      `barge_gpu_memory_used_bytes{gpu="0",${h100}} ${71234 * MIB}`,
      `barge_gpu_memory_used_bytes{gpu="1",${h100}} ${1024 * MIB}`,
      `barge_gpu_memory_total_bytes{gpu="0",${h100}} ${81559 * MIB}`,
      `barge_gpu_memory_total_bytes{gpu="1",${h100}} ${81559 * MIB}`,
      `barge_gpu_power_watts{gpu="0",${h100}} 402.17`,
    ]);
    // prom-client's process metrics come along, less its misnamed `*_total` gauges.
    expect(text).toContain("# TYPE process_cpu_seconds_total counter\n");
    expect(text).toContain("# TYPE nodejs_active_handles gauge\n");
    expect(text).not.toContain("nodejs_active_handles_total");
  });
});

import { describe, expect, it } from "vitest";
import { freePort } from "@barge/devstack";
import { loadConfig } from "@barge/core";
import { chatLine, seedBatch, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

const TOTAL = 30;
const FAILING = [3, 14, 25];

/** The unlabelled samples of a Prometheus text body, by name. */
function samples(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
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
      barge_agent_requests_completed_total: TOTAL - FAILING.length,
      barge_agent_requests_failed_total: FAILING.length,
      barge_agent_chunks_claimed_total: 3,
      barge_agent_chunks_completed_total: 3,
    });
    expect(res.text).toContain("# TYPE barge_agent_requests_completed_total counter\n");
    expect(res.text).toContain("# TYPE barge_agent_concurrency_limit gauge\n");
    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);

    // Stopping the agent closes the endpoint.
    await agent.stop({ graceful: true });
    await expect(fetch(url)).rejects.toThrow();
  });
});

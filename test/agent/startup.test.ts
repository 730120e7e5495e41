import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "@barge/devstack";
import { describe, expect, it } from "vitest";
import { faultSuite } from "../support/fault-suite.js";
import { eventually, simReady } from "../support/processes.js";
import { downedPostgres } from "../support/tcp-proxy.js";

// The agent process at start: an engine that is not up yet (vLLM loading a model) is waited for
// with one-line reasons while its /readyz says why; Postgres and S3 as the API treats them.
const agentMain = fileURLToPath(new URL("../../services/agent/src/main.ts", import.meta.url));
const STACK_FRAME = /^\s+at /m;

const get = async (url: string) => {
  const r = await fetch(url);
  return { status: r.status, body: (await r.json()) as Record<string, any> };
};

describe("agent start-up", () => {
  const suite = faultSuite();

  it("an engine not up yet: waits with one-line reasons, /readyz 503 naming it, then registers and is ready once the engine answers", async () => {
    const ctx = await suite.context();
    const [enginePort, metricsPort] = [await freePort(), await freePort()];
    const engineUrl = `http://127.0.0.1:${enginePort}`;
    const agent = suite.children.start(agentMain, [], {
      ...ctx.env,
      LOG_LEVEL: "info",
      NODE_NO_WARNINGS: "1",
      AGENT_ID: "startup-agent",
      VLLM_URL: engineUrl,
      AGENT_METRICS_PORT: String(metricsPort),
    });
    const readyz = `http://127.0.0.1:${metricsPort}/readyz`;
    const waiting = await eventually("/readyz naming the engine", async () => {
      const r = await get(readyz);
      return r.status === 503 && r.body.reason !== "starting" ? r : undefined;
    });
    expect(waiting.body).toEqual({
      status: "unready",
      reason: `the engine at ${engineUrl} is not up yet (engine request failed: connect ECONNREFUSED 127.0.0.1:${enginePort}); it may still be loading a model`,
    });
    expect(await get(`http://127.0.0.1:${metricsPort}/livez`)).toEqual({ status: 200, body: { status: "ok" } });
    const waits = agent.logs().filter((l) => typeof l.msg === "string" && l.msg.startsWith("waiting: "));
    expect(waits.length).toBeGreaterThanOrEqual(1);
    for (const l of waits) {
      expect(l.msg).toBe(`waiting: ${waiting.body.reason}; retrying`);
      expect(l.err).toBeUndefined();
    }
    expect(await ctx.db.selectFrom("agents").select("id").execute()).toEqual([]);

    suite.children.engineSim(enginePort, join(suite.tempDir("barge-startup-sim-"), "requests.jsonl"));
    await simReady(engineUrl);
    expect(await eventually("/readyz 200", async () => {
      const r = await get(readyz);
      return r.status === 200 ? r : undefined;
    })).toEqual({ status: 200, body: { status: "ready" } });
    const row = await ctx.db.selectFrom("agents").select(["id", "models"]).executeTakeFirstOrThrow();
    expect(row).toEqual({ id: "startup-agent", models: ["barge-sim-1"] });
    expect(agent.stderr()).not.toMatch(STACK_FRAME);
    agent.signal("SIGTERM");
    expect(await agent.exited).toBe(0);
  });

  it("Postgres out of reach is waited for (one line per retry, /readyz 503 naming it); a missing bucket exits 1 with one line", async () => {
    const ctx = await suite.context();
    const { proxy, url: proxiedUrl, port: proxiedPort } = await downedPostgres(ctx.env.DATABASE_URL!);
    suite.cleanup(() => proxy.close());
    const sim = await suite.sim({ models: ["barge-sim-1"] });
    const base = { ...ctx.env, LOG_LEVEL: "info", NODE_NO_WARNINGS: "1", VLLM_URL: sim.url };

    const metricsPort = await freePort();
    const readyz = `http://127.0.0.1:${metricsPort}/readyz`;
    const waiting = suite.children.start(agentMain, [], { ...base, DATABASE_URL: proxiedUrl, AGENT_ID: "late-agent", AGENT_METRICS_PORT: String(metricsPort) });
    await eventually("two retries logged", async () => waiting.logs().filter((l) => typeof l.msg === "string" && l.msg.startsWith("waiting: ")).length >= 2);
    const refusedDb = `Postgres is unreachable (connect ECONNREFUSED 127.0.0.1:${proxiedPort})`;
    for (const l of waiting.logs().filter((x) => typeof x.msg === "string" && x.msg.startsWith("waiting: "))) {
      expect(l.msg).toMatch(new RegExp(`^waiting: ${refusedDb.replace(/[().]/g, "\\$&")}; retrying in \\d+\\.\\d s$`));
    }
    expect(await get(readyz)).toEqual({ status: 503, body: { status: "unready", reason: refusedDb } });
    await proxy.up();
    await eventually("the agent registered once Postgres answers", async () => (await ctx.db.selectFrom("agents").select("id").where("id", "=", "late-agent").execute()).length === 1, 30_000);
    await eventually("/readyz 200 once registered", async () => (await get(readyz)).status === 200);
    expect(waiting.stderr()).not.toMatch(STACK_FRAME);

    const bucket = `barge-missing-${randomBytes(4).toString("hex")}`;
    const refused = suite.children.start(agentMain, [], { ...base, S3_BUCKET: bucket });
    expect(await refused.exited).toBe(1);
    expect(refused.stderr().split("\n").filter((l) => l !== "" && !l.startsWith("{"))).toEqual([
      `barge-agent: cannot start: the S3 bucket '${bucket}' does not exist (NoSuchBucket): create it, or set S3_CREATE_BUCKET=true to let Barge create it`,
    ]);
  });
});

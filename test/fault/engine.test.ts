import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { freePort } from "@barge/devstack";
import { faultSuite } from "../support/fault-suite.js";
import { eventually, simLog, simReady } from "../support/processes.js";
import { batchRow, committedCount, committedIndexes, readResults, requestIndexOf } from "../support/results.js";
import { chatLine, seedBatch } from "../support/seed.js";

const TOTAL = 60;

describe("fault: the engine restarted mid-batch", () => {
  const suite = faultSuite();
  const { children } = suite;

  it("pauses instead of failing requests: releases the chunk, waits for the engine, and completes exactly once", async () => {
    const ctx = await suite.context({
      CHUNK_SIZE: "10",
      SEGMENT_MAX_LINES: "3",
      SEGMENT_MAX_MS: "300",
      LEASE_SECONDS: "3",
      AGENT_POLL_MS: "50",
      API_POLL_MS: "50",
      AGENT_CONCURRENCY: "3",
      ENGINE_MAX_ATTEMPTS: "3",
    });
    const dir = suite.tempDir("barge-fault-engine-");
    const logFile = join(dir, "requests.jsonl");
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const simArgs = ["--decode-tps", "150"];
    const engine = children.engineSim(port, logFile, simArgs);
    await simReady(url);

    const requests = Array.from({ length: TOTAL }, (_, i) => chatLine(`e-${i}`, `engine restart ${i}`));
    const { batchId } = await seedBatch(ctx, requests);
    const agent = children.agent({ ...ctx.env, VLLM_URL: url }, "resilient");
    await eventually("a few commits", async () => (await committedCount(ctx, batchId)) >= 6);

    // vLLM dies: every in-flight request is cut and new connections are refused.
    engine.signal("SIGKILL");
    await engine.exited;
    const released = await eventually("the agent to release its chunk for the outage", async () =>
      agent.logs().find((l) => l.msg === "chunk run ended" && l.outcome === "engine_down"),
    );
    expect(released.batch).toBe(batchId);
    // Both of the agent's runs (it claims the next chunk at a chunk's tail) commit what finished and let go.
    await eventually("no chunk to be leased", async () =>
      (await ctx.db.selectFrom("chunks").select("idx").where("batch_id", "=", batchId).where("status", "=", "leased").execute()).length === 0,
    );
    // The agent now waits for the engine: what is committed stays put until it is back.
    const committed = await committedIndexes(ctx, batchId);
    expect(committed.size).toBeLessThan(TOTAL);
    const restartedAt = Date.now();
    children.engineSim(port, logFile, simArgs);
    await simReady(url);

    const batch = await eventually("the batch to complete", async () => {
      const b = await batchRow(ctx, batchId);
      return b.status === "completed" ? b : undefined;
    });
    expect(agent.process.exitCode).toBeNull();
    expect(agent.logs().some((l) => l.msg === "engine answers again; claiming")).toBe(true);
    // No request was burned into an engine_unavailable error line.
    expect(batch.error_file_id).toBeNull();
    const { output, errors } = await readResults(ctx, batch);
    expect(errors).toEqual([]);
    expect(output.map((l) => l.custom_id)).toEqual(requests.map((r) => r.custom_id));
    expect(output.map((l) => requestIndexOf(l.response?.request_id))).toEqual(requests.map((_, i) => i));
    expect(output.every((l) => l.response?.status_code === 200)).toBe(true);
    // The restarted engine (its entries in the same log file) ran exactly what was not committed, once each.
    const secondLife = simLog(logFile).filter((r) => r.startedAt >= restartedAt);
    expect(secondLife.every((r) => r.status === 200)).toBe(true);
    expect(secondLife.map((r) => requestIndexOf(r.requestId)).sort((a, b) => a - b)).toEqual(requests.map((_, i) => i).filter((i) => !committed.has(i)));
  });
});

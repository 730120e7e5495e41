import { describe, expect, it } from "vitest";
import type { EngineSim, EngineSimOptions } from "@barge/engine-sim";
import type { TestContext } from "../support/context.js";
import { faultSuite } from "../support/fault-suite.js";
import { eventually } from "../support/processes.js";
import { batchRow, chunkRows, readResults, requestIndexOf } from "../support/results.js";
import { chatLine, seedBatch } from "../support/seed.js";

const TOTAL = 30;

describe("fault: SIGTERM to an agent process", () => {
  const suite = faultSuite();
  const { children } = suite;

  async function setup(env: Record<string, string>, simOptions: EngineSimOptions) {
    const ctx = await suite.context({ CHUNK_SIZE: "30", SEGMENT_MAX_LINES: "3", SEGMENT_MAX_MS: "400", LEASE_SECONDS: "3", AGENT_POLL_MS: "50", API_POLL_MS: "50", AGENT_CONCURRENCY: "3", AGENT_MAX_CONCURRENCY: "3", ...env });
    const sim = await suite.sim({ models: ["barge-sim-1"], ...simOptions });
    const requests = Array.from({ length: TOTAL }, (_, i) => chatLine(`t-${i}`, `terminate ${i}`));
    const { batchId } = await seedBatch(ctx, requests);
    return { ctx, sim, requests, batchId };
  }

  /** Waits until the agent has committed something and the engine is running requests for it. */
  const midChunk = (ctx: TestContext, sim: EngineSim, batchId: string) =>
    eventually("a commit with requests in flight", async () => {
      const [c] = await chunkRows(ctx, batchId);
      return c!.committed >= 3 && sim.requests().some((r) => r.finishedAt === null);
    });

  it("drains: in-flight requests finish and are committed, the chunk is released, exit 0, nothing is ever re-sent", async () => {
    const { ctx, sim, requests, batchId } = await setup({}, { decodeTokensPerSec: 150 });
    const agent = children.agent({ ...ctx.env, VLLM_URL: sim.url }, "draining");
    await midChunk(ctx, sim, batchId);
    agent.signal("SIGTERM");
    expect(await agent.exited, agent.stderr()).toBe(0);

    // Every request it sent was answered (none aborted) and committed; the chunk is free again.
    const [c] = await chunkRows(ctx, batchId);
    expect([c!.status, c!.leased_by, c!.lease_expires_at, c!.failures]).toEqual(["queued", null, null, 0]);
    const sent = sim.requests();
    expect(sent.every((r) => r.status === 200)).toBe(true);
    expect(sent.map((r) => requestIndexOf(r.requestId)).sort((a, b) => a - b)).toEqual(Array.from({ length: c!.committed }, (_, i) => i));
    expect(c!.committed).toBeLessThan(TOTAL);

    children.agent({ ...ctx.env, VLLM_URL: sim.url }, "successor");
    const batch = await eventually("the batch to complete", async () => {
      const b = await batchRow(ctx, batchId);
      return b.status === "completed" ? b : undefined;
    });
    const { output, errors } = await readResults(ctx, batch);
    expect(errors).toEqual([]);
    expect(output.map((l) => l.custom_id)).toEqual(requests.map((r) => r.custom_id));
    // A drain costs no rework at all: each request reached the engine exactly once.
    expect(sim.requests().map((r) => requestIndexOf(r.requestId)).sort((a, b) => a - b)).toEqual(requests.map((_, i) => i));
  });

  it("past the grace period aborts in-flight requests, commits the finished prefix, releases, exit 0", async () => {
    // 400-2400 ms a request against a 200 ms grace: requests are still running when it ends.
    const { ctx, sim, batchId } = await setup({ AGENT_SHUTDOWN_GRACE_MS: "200" }, { decodeTokensPerSec: 20 });
    const agent = children.agent({ ...ctx.env, VLLM_URL: sim.url }, "hurried");
    await midChunk(ctx, sim, batchId);
    agent.signal("SIGTERM");
    expect(await agent.exited, agent.stderr()).toBe(0);
    expect(agent.logs().some((l) => l.msg === "shutdown grace over: aborting in-flight requests"), agent.stderr()).toBe(true);

    const [c] = await chunkRows(ctx, batchId);
    expect([c!.status, c!.leased_by, c!.failures]).toEqual(["queued", null, 0]);
    // The checkpoint is exactly the prefix that was answered; aborted requests lie past it.
    const sent = await eventually("the engine to see every abort", async () => {
      const log = sim.requests();
      return log.every((r) => r.finishedAt !== null) ? log : undefined;
    });
    const answered = new Set(sent.filter((r) => r.status === 200).map((r) => requestIndexOf(r.requestId)));
    const aborted = sent.filter((r) => r.status === null).map((r) => requestIndexOf(r.requestId));
    expect(aborted.length).toBeGreaterThan(0);
    for (let i = 0; i < c!.committed; i++) expect(answered.has(i), `request ${i}`).toBe(true);
    expect(answered.has(c!.committed)).toBe(false);
    expect(aborted.every((i) => i >= c!.committed)).toBe(true);
  });

  it("a second signal exits at once, leaving the lease to lapse", async () => {
    const { ctx, sim, batchId } = await setup({ AGENT_SHUTDOWN_GRACE_MS: "60000" }, { decodeTokensPerSec: 20 });
    const agent = children.agent({ ...ctx.env, VLLM_URL: sim.url }, "impatient");
    await midChunk(ctx, sim, batchId);
    agent.signal("SIGTERM");
    await eventually("the first signal to be handled", async () => agent.logs().some((l) => l.msg === "stopping: finishing in-flight requests and releasing the chunk"));
    agent.signal("SIGTERM");
    expect(await agent.exited).toBe(1);
    expect(agent.logs().some((l) => l.msg === "second signal: exiting at once")).toBe(true);
    const [c] = await chunkRows(ctx, batchId);
    expect([c!.status, c!.leased_by]).toEqual(["leased", "impatient"]);
  });
});

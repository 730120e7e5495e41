import { describe, expect, it } from "vitest";
import { keys } from "@barge/core";
import { type Agent } from "@barge/agent";
import { type EngineSim } from "@barge/engine-sim";
import { type TestContext } from "../support/context.js";
import { chatLine, readObject, seedBatch, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

const TOTAL = 30;

describe("agent: resume after a crash or a graceful stop", () => {
  const suite = suiteResources();

  async function setup(): Promise<{ ctx: TestContext; sim: EngineSim; agent: (id: string) => Agent; batchId: string; tenant: string }> {
    const ctx = await suite.context({ CHUNK_SIZE: "10", SEGMENT_MAX_LINES: "2", LEASE_SECONDS: "2", AGENT_CONCURRENCY: "2", AGENT_MAX_CONCURRENCY: "2", AGENT_POLL_MS: "50", API_POLL_MS: "50" });
    // Slow enough (80-480 ms a request) that a stop lands mid-chunk.
    const sim = await suite.sim({ models: ["barge-sim-1"], decodeTokensPerSec: 100 });
    const { batchId, tenant } = await seedBatch(ctx, Array.from({ length: TOTAL }, (_, i) => chatLine(`job-${i}`, `resume me ${i}`)));
    const agent = (id: string) => {
      const a = suite.agent(ctx, { engineUrl: sim.url, agentId: id });
      return a;
    };
    return { ctx, sim, agent, batchId, tenant };
  }

  const chunks = (ctx: TestContext, batchId: string) => ctx.db.selectFrom("chunks").selectAll().where("batch_id", "=", batchId).orderBy("idx").execute();
  const segmentCount = async (ctx: TestContext, batchId: string) =>
    (await ctx.db.selectFrom("segments").select("seq").where("batch_id", "=", batchId).execute()).length;
  const status = async (ctx: TestContext, batchId: string) =>
    (await ctx.db.selectFrom("batches").select("status").where("id", "=", batchId).executeTakeFirstOrThrow()).status;

  /** Request ids (`batch:index`) committed so far, from the chunk checkpoints. */
  const committedIds = async (ctx: TestContext, batchId: string) =>
    (await chunks(ctx, batchId)).flatMap((c) => Array.from({ length: c.committed }, (_, k) => `${batchId}:${c.request_start + k}`));

  async function expectExactlyOnceInOrder(ctx: TestContext, batchId: string, tenant: string): Promise<void> {
    const out = (await readObject(ctx, keys.output(tenant, batchId)))
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as { custom_id: string; response: { status_code: number; request_id: string } });
    expect(out.map((l) => l.custom_id)).toEqual(Array.from({ length: TOTAL }, (_, i) => `job-${i}`));
    expect(out.map((l) => l.response.request_id)).toEqual(Array.from({ length: TOTAL }, (_, i) => `${batchId}:${i}`));
    expect(out.every((l) => l.response.status_code === 200)).toBe(true);
  }

  it("a new agent finishes a crashed agent's chunk without resending committed requests", async () => {
    const { ctx, sim, agent, batchId, tenant } = await setup();
    const first = agent("crashing-agent");
    await first.start();
    await waitFor("a committed segment", async () => (await segmentCount(ctx, batchId)) >= 1);
    await first.stop({ graceful: false });

    const before = await chunks(ctx, batchId);
    const committed = await committedIds(ctx, batchId);
    expect(committed.length).toBeGreaterThanOrEqual(2);
    expect(committed.length).toBeLessThan(TOTAL);
    expect(await status(ctx, batchId)).toBe("in_progress");
    // A crash releases nothing: the chunk stays leased to the dead agent until its lease lapses.
    expect(before[0]).toMatchObject({ status: "leased", leased_by: "crashing-agent", attempts: 1 });
    const sentBefore = sim.requests().length;

    await ctx.db.updateTable("chunks").set({ lease_expires_at: new Date(Date.now() - 60_000) }).where("batch_id", "=", batchId).where("status", "=", "leased").execute();
    const second = agent("rescuing-agent");
    await second.start();
    await waitFor("the batch to complete", async () => (await status(ctx, batchId)) === "completed");

    await expectExactlyOnceInOrder(ctx, batchId, tenant);
    const after = await chunks(ctx, batchId);
    expect(after.map((c) => [c.status, c.committed])).toEqual([
      ["done", 10],
      ["done", 10],
      ["done", 10],
    ]);
    // The crashed chunk was claimed a second time and resumed from its checkpoint.
    expect(after[0]!.attempts).toBe(2);
    expect(after[0]!.fence).toBe(before[0]!.fence + 1);

    const log = sim.requests();
    expect(log.length).toBeGreaterThan(sentBefore);
    for (const id of committed) expect(log.filter((r) => r.requestId === id), id).toHaveLength(1);
    // Only requests not yet committed at the crash were sent twice: those dispatched past the last
    // released result (at most the reorder window, 4 x concurrency = 8) plus released ones in the
    // pending segment and in the segment being committed (each at most SEGMENT_MAX_LINES, 2).
    const sentTwice = new Set(log.map((r) => r.requestId).filter((id, i, all) => all.indexOf(id) !== i));
    expect(sentTwice.size).toBeLessThanOrEqual(4 * 2 + 2 * 2);
    for (const id of sentTwice) expect(committed).not.toContain(id);
  });

  it("a graceful stop commits the finished prefix and releases the chunk to the next agent at once", async () => {
    const { ctx, sim, agent, batchId, tenant } = await setup();
    const first = agent("leaving-agent");
    await first.start();
    await waitFor("a committed segment", async () => (await segmentCount(ctx, batchId)) >= 1);
    await first.stop({ graceful: true });

    const released = await chunks(ctx, batchId);
    // Released, not left leased: nobody has to wait for a lease to lapse.
    expect(released[0]).toMatchObject({ status: "queued", leased_by: null, lease_expires_at: null });
    const committed = await committedIds(ctx, batchId);
    expect(committed.length).toBeLessThan(TOTAL);
    // The finished prefix was committed: every request that got a 200 before the stop is in it
    // unless a request before it was still running.
    const answered = new Set(sim.requests().filter((r) => r.status === 200).map((r) => r.requestId));
    for (const id of committed) expect(answered.has(id), id).toBe(true);

    const second = agent("next-agent");
    await second.start();
    await waitFor("the batch to complete", async () => (await status(ctx, batchId)) === "completed");
    await expectExactlyOnceInOrder(ctx, batchId, tenant);
    const log = sim.requests();
    for (const id of committed) expect(log.filter((r) => r.requestId === id), id).toHaveLength(1);
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgent } from "@barge/agent";
import { freePort } from "@barge/devstack";
import { claimChunk, expireBatches, releaseChunk, rescueExpiredChunks } from "@barge/core";
import { createTestContext, testLog, type TestContext } from "../support/context.js";
import { batchRow, chunkRows } from "../support/results.js";
import { chatLine, seedBatch, waitFor } from "../support/seed.js";

describe("agent housekeeping statements", () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext({ CHUNK_SIZE: "2" });
  });
  afterAll(() => ctx.close());

  const lines = (n: number) => Array.from({ length: n }, (_, i) => chatLine(`h-${i}`, `housekeeping ${i}`));

  it("expiry moves each overdue in_progress batch once, however many agents run it, and closes only its queued chunks", async () => {
    const overdue = await seedBatch(ctx, lines(6));
    const onTime = await seedBatch(ctx, lines(2));
    const held = (await claimChunk(ctx.db, { agentId: "runner", models: ["barge-sim-1"], leaseSeconds: 30 }))!;
    expect(held.batch_id).toBe(overdue.batchId);
    await ctx.db.updateTable("batches").set({ expires_at: new Date(Date.now() - 1000) }).where("id", "=", overdue.batchId).execute();

    const runs = await Promise.all([expireBatches(ctx.db), expireBatches(ctx.db), expireBatches(ctx.db)]);
    expect(runs.flat()).toEqual([overdue.batchId]);
    const b = await batchRow(ctx, overdue.batchId);
    expect([b.status, b.expired_at !== null, b.finalizing_at !== null]).toEqual(["finalizing", true, true]);
    // The running chunk learns of it at its next heartbeat; the queued ones will never run.
    expect((await chunkRows(ctx, overdue.batchId)).map((c) => c.status)).toEqual(["leased", "cancelled", "cancelled"]);
    expect((await batchRow(ctx, onTime.batchId)).status).toBe("in_progress");
    expect(await expireBatches(ctx.db)).toEqual([]);
  });

  it("counts crashed and failed claims towards the poison cap, but not clean releases", async () => {
    const { batchId } = await seedBatch(ctx, lines(2));
    const claim = async () => (await claimChunk(ctx.db, { agentId: "a", models: ["barge-sim-1"], leaseSeconds: 30 }))!;
    const failures = async () => (await chunkRows(ctx, batchId))[0]!.failures;
    const claimOurs = async () => {
      // Earlier tests' chunks are still queued; only this batch's chunk matters here.
      for (;;) {
        const c = await claim();
        if (c.batch_id === batchId) return c;
      }
    };
    let c = await claimOurs();
    expect(await releaseChunk(ctx.db, { batchId, idx: c.idx, fence: c.fence })).toBe(true);
    expect(await failures()).toBe(0);
    c = await claimOurs();
    expect(await releaseChunk(ctx.db, { batchId, idx: c.idx, fence: c.fence, failed: true })).toBe(true);
    expect(await failures()).toBe(1);
    c = await claimOurs();
    await ctx.db.updateTable("chunks").set({ lease_expires_at: new Date(Date.now() - 1000) }).where("batch_id", "=", batchId).execute();
    expect(await rescueExpiredChunks(ctx.db)).toBe(1);
    expect(await failures()).toBe(2);
    expect((await chunkRows(ctx, batchId))[0]!.attempts).toBe(3);
  });
});

describe("an agent whose engine does not answer", () => {
  it("still requeues lapsed chunks, expires overdue batches and forgets agents gone for a day while it waits for the engine", async () => {
    const ctx = await createTestContext({ CHUNK_SIZE: "2", LEASE_SECONDS: "2", AGENT_POLL_MS: "50", API_POLL_MS: "50" });
    try {
      const lines = Array.from({ length: 4 }, (_, i) => chatLine(`w-${i}`, `waiting ${i}`));
      const crashed = await seedBatch(ctx, lines);
      const overdue = await seedBatch(ctx, lines);
      // Another agent died holding a chunk: its lease has lapsed.
      const held = (await claimChunk(ctx.db, { agentId: "dead", models: ["barge-sim-1"], leaseSeconds: 30 }))!;
      expect(held.batch_id).toBe(crashed.batchId);
      await ctx.db.updateTable("chunks").set({ lease_expires_at: new Date(Date.now() - 1000) }).where("batch_id", "=", crashed.batchId).where("idx", "=", held.idx).execute();
      await ctx.db.updateTable("batches").set({ expires_at: new Date(Date.now() - 1000) }).where("id", "=", overdue.batchId).execute();
      // Two agents of the past: one gone for two days, one seen an hour ago.
      const seen = (hoursAgo: number) => new Date(Date.now() - hoursAgo * 3600_000);
      await ctx.db.insertInto("agents").values([
        { id: "gone", hostname: "h", models: JSON.stringify(["barge-sim-1"]), last_seen_at: seen(48) },
        { id: "recent", hostname: "h", models: JSON.stringify(["barge-sim-1"]), last_seen_at: seen(1) },
      ]).execute();

      // Nothing listens on this port: the agent keeps waiting for its engine's model list.
      const agent = createAgent({ db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, config: ctx.config, log: testLog, engineUrl: `http://127.0.0.1:${await freePort()}`, agentId: "waiting" });
      const started = agent.start();
      try {
        await waitFor("the lapsed chunk to be requeued", async () => {
          const c = (await chunkRows(ctx, crashed.batchId))[held.idx]!;
          return c.status === "queued" ? c : undefined;
        });
        await waitFor("the overdue batch to be expired", async () => ((await batchRow(ctx, overdue.batchId)).status === "finalizing" ? true : undefined));
        expect((await chunkRows(ctx, crashed.batchId)).map((c) => [c.status, c.leased_by])).toEqual([["queued", null], ["queued", null]]);
        // The agent gone for more than a day is forgotten; the recent one stays; the waiting one never registered.
        await waitFor("the departed agent to be forgotten", async () =>
          (await ctx.db.selectFrom("agents").select("id").where("id", "=", "gone").execute()).length === 0 ? true : undefined,
        );
        expect((await ctx.db.selectFrom("agents").select("id").orderBy("id").execute()).map((a) => a.id)).toEqual(["recent"]);
      } finally {
        await agent.stop({ graceful: false });
        await started;
      }
    } finally {
      await ctx.close();
    }
  });
});

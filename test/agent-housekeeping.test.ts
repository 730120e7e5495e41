import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claimChunk, expireBatches, releaseChunk, rescueExpiredChunks } from "@barge/core";
import { createTestContext, type TestContext } from "./support/context.js";
import { batchRow, chunkRows } from "./support/results.js";
import { chatLine, seedBatch } from "./support/seed.js";

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

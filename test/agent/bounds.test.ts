import { describe, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import { claimChunk, loadConfig } from "@barge/core";
import { startChunk, type EngineClient, type EngineRequest, type EngineResponse } from "@barge/agent/testing";
import { testLog } from "../support/context.js";
import { chatLine, seedBatch, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

/**
 * An in-process engine whose answers the test controls: request `held` is held until
 * `release()`, every other one answers on the next tick. It only stands in for the HTTP engine (real
 * Postgres and S3 still do the rest), so the runner's dispatch bounds can be observed exactly.
 */
function gatedEngine(held = 0) {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const sent: number[] = [];
  let inflight = 0;
  let maxInflight = 0;
  const engine: EngineClient = {
    async send(req: EngineRequest): Promise<EngineResponse> {
      const index = Number(req.requestId.split(":")[1]);
      sent.push(index);
      inflight++;
      maxInflight = Math.max(maxInflight, inflight);
      try {
        if (index === held) await gate;
        else await sleep(0);
        return { status: 200, body: { index }, requestId: req.requestId, attempts: 1 };
      } finally {
        inflight--;
      }
    },
    models: async () => ["barge-sim-1"],
    close: async () => {},
  };
  return { engine, sent, release: open, maxInflight: () => maxInflight };
}

describe("agent: bounded dispatch", () => {
  const suite = suiteResources();

  it("never runs more than the concurrency, nor dispatches past the window behind a slow request", async () => {
    const ctx = await suite.context({ CHUNK_SIZE: "1000" });
    const total = 200;
    const { batchId } = await seedBatch(ctx, Array.from({ length: total }, (_, i) => chatLine(`b${i}`, `bounded ${i}`)));
    const chunk = (await claimChunk(ctx.db, { agentId: "bounds", models: ["barge-sim-1"], leaseSeconds: 30 }))!;
    const config = loadConfig({ ...ctx.env, AGENT_CONCURRENCY: "4", SEGMENT_MAX_LINES: "10", SEGMENT_MAX_MS: "100000" });
    const gated = gatedEngine();
    const window = 16;
    const run = startChunk({ db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, engine: gated.engine, log: testLog, config, window }, chunk);

    // Request 0 blocks everything behind it: exactly the window is dispatched, nothing commits.
    await waitFor("the window to fill", async () => gated.sent.length >= window);
    await sleep(300);
    expect(gated.sent.slice().sort((a, b) => a - b)).toEqual(Array.from({ length: window }, (_, i) => i));
    expect((await ctx.db.selectFrom("chunks").select("committed").where("batch_id", "=", batchId).executeTakeFirstOrThrow()).committed).toBe(0);

    gated.release();
    expect(await run.done).toBe("completed");
    expect(gated.sent.slice().sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(gated.maxInflight()).toBe(4);
    const done = await ctx.db.selectFrom("chunks").selectAll().where("batch_id", "=", batchId).executeTakeFirstOrThrow();
    expect([done.status, done.committed, done.completed]).toEqual(["done", total, total]);
    // Segments never exceed SEGMENT_MAX_LINES, so 200 results took at least 20 of them.
    const segments = await ctx.db.selectFrom("segments").select(["lines", "seq"]).where("batch_id", "=", batchId).orderBy("seq").execute();
    expect(segments.every((s) => s.lines <= 10)).toBe(true);
    expect(segments.reduce((n, s) => n + s.lines, 0)).toBe(total);
    expect(segments.map((s) => s.seq)).toEqual(segments.map((_, i) => i));
  });

  it("commits what is pending once SEGMENT_MAX_MS passes, short of SEGMENT_MAX_LINES", async () => {
    const ctx = await suite.context({ CHUNK_SIZE: "1000" });
    const { batchId } = await seedBatch(ctx, Array.from({ length: 20 }, (_, i) => chatLine(`t${i}`, `timed ${i}`)));
    const chunk = (await claimChunk(ctx.db, { agentId: "timer", models: ["barge-sim-1"], leaseSeconds: 30 }))!;
    const config = loadConfig({ ...ctx.env, AGENT_CONCURRENCY: "4", SEGMENT_MAX_LINES: "100", SEGMENT_MAX_MS: "50" });
    const gated = gatedEngine(5);
    const run = startChunk({ db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, engine: gated.engine, log: testLog, config }, chunk);

    // Requests 0-4 finished in order while 5 is held: the timer alone must commit them.
    const checkpoint = await waitFor("the in-order prefix to commit", async () => {
      const c = await ctx.db.selectFrom("chunks").selectAll().where("batch_id", "=", batchId).executeTakeFirstOrThrow();
      return c.committed > 0 ? c : undefined;
    });
    expect([checkpoint.committed, checkpoint.next_seq, checkpoint.next_line]).toEqual([5, 1, chunk.start_line + 5]);

    gated.release();
    expect(await run.done).toBe("completed");
    const done = await ctx.db.selectFrom("chunks").selectAll().where("batch_id", "=", batchId).executeTakeFirstOrThrow();
    expect([done.status, done.committed, done.next_offset]).toEqual(["done", 20, chunk.end_offset]);
  });
});

import { describe, expect, it } from "vitest";
import { batchProgress, cancelBatch, headObject, keys } from "@barge/core";
import { type Agent } from "@barge/agent";
import { type EngineSim } from "@barge/engine-sim";
import { type TestContext } from "../support/context.js";
import { chatLine, readObject, seedBatch, segmentsGone, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

const TOTAL = 20;

describe("agent: cancel", () => {
  const suite = suiteResources();

  async function setup(): Promise<{ ctx: TestContext; sim: EngineSim; agent: Agent }> {
    const ctx = await suite.context({ CHUNK_SIZE: "8", SEGMENT_MAX_LINES: "1", LEASE_SECONDS: "2", AGENT_CONCURRENCY: "2", AGENT_POLL_MS: "50", API_POLL_MS: "50" });
    // 160-960 ms a request: the cancel lands while requests are running.
    const sim = await suite.sim({ models: ["barge-sim-1"], decodeTokensPerSec: 50 });
    const agent = suite.agent(ctx, { engineUrl: sim.url, agentId: "cancel-agent" });
    return { ctx, sim, agent };
  }

  const batchRow = (ctx: TestContext, id: string) => ctx.db.selectFrom("batches").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
  const cancel = (ctx: TestContext, id: string) => ctx.db.transaction().execute((tx) => cancelBatch(tx, id));
  const customIds = (text: string) =>
    text
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => (JSON.parse(l) as { custom_id: string }).custom_id);

  it("stops mid-run, keeps exactly the committed prefix, and closes every chunk", async () => {
    const { ctx, sim, agent } = await setup();
    const { batchId, tenant } = await seedBatch(ctx, Array.from({ length: TOTAL }, (_, i) => chatLine(`c-${i}`, `cancel me ${i}`)));
    await agent.start();
    await waitFor("two committed segments", async () => (await ctx.db.selectFrom("segments").select("seq").where("batch_id", "=", batchId).execute()).length >= 2);
    expect((await cancel(ctx, batchId))?.status).toBe("cancelling");

    const batch = await waitFor("the batch to be cancelled", async () => {
      const b = await batchRow(ctx, batchId);
      return b.status === "cancelled" ? b : undefined;
    });
    expect(batch.cancelled_at).not.toBeNull();
    expect(batch.completed_at).toBeNull();

    const chunks = await ctx.db.selectFrom("chunks").selectAll().where("batch_id", "=", batchId).orderBy("idx").execute();
    const committed = chunks.reduce((n, c) => n + c.committed, 0);
    expect(committed).toBeGreaterThanOrEqual(2);
    expect(committed).toBeLessThan(TOTAL);
    // A chunk is done only if all of it was committed; everything else was closed as cancelled.
    for (const c of chunks) expect(c.status).toBe(c.committed === c.request_count ? "done" : "cancelled");
    expect(chunks.filter((c) => c.status === "cancelled").length).toBeGreaterThanOrEqual(1);

    // The output is each chunk's committed prefix, in input order, and nothing else (the agent
    // may have been running the next chunk beside the current one when the cancel came).
    const text = await readObject(ctx, keys.output(tenant, batchId));
    expect(customIds(text)).toEqual(chunks.flatMap((c) => Array.from({ length: c.committed }, (_, k) => `c-${c.request_start + k}`)));
    expect(batch.output_file_id).not.toBeNull();
    expect(batch.error_file_id).toBeNull();
    const progress = (await batchProgress(ctx.db, [batchId])).get(batchId)!;
    expect([progress.completed, progress.failed]).toEqual([committed, 0]);

    const manifest = JSON.parse(await readObject(ctx, keys.manifest(tenant, batchId))) as Record<string, unknown>;
    expect(manifest).toMatchObject({ status: "cancelled", request_counts: { total: TOTAL, completed: committed, failed: 0 }, output: { lines: committed } });
    // Segments go, rows and objects, right after the batch points at the stitched output.
    await segmentsGone(ctx, batchId);

    // Chunks still queued at the cancel were closed by it and never claimed; the engine only
    // ever saw requests of the chunks that ran.
    const claimed = chunks.filter((c) => c.attempts > 0);
    expect(chunks.filter((c) => c.attempts === 0).every((c) => c.status === "cancelled" && c.committed === 0)).toBe(true);
    for (const r of sim.requests()) {
      const index = Number(r.requestId!.split(":")[1]);
      expect(claimed.some((c) => index >= c.request_start && index < c.request_start + c.request_count), r.requestId!).toBe(true);
    }
  });

  it("a batch cancelled before any agent ran it gets an empty output", async () => {
    const { ctx, sim, agent } = await setup();
    const { batchId, tenant } = await seedBatch(ctx, Array.from({ length: 5 }, (_, i) => chatLine(`e-${i}`, `never ${i}`)));
    expect((await cancel(ctx, batchId))?.status).toBe("cancelling");
    await agent.start();
    const batch = await waitFor("the batch to be cancelled", async () => {
      const b = await batchRow(ctx, batchId);
      return b.status === "cancelled" ? b : undefined;
    });
    expect(sim.requests()).toHaveLength(0);
    expect((await headObject(ctx, keys.output(tenant, batchId)))?.bytes).toBe(0);
    const file = await ctx.db.selectFrom("files").selectAll().where("id", "=", batch.output_file_id!).executeTakeFirstOrThrow();
    expect(file.bytes).toBe(0);
    expect(batch.error_file_id).toBeNull();
    const manifest = JSON.parse(await readObject(ctx, keys.manifest(tenant, batchId))) as Record<string, unknown>;
    expect(manifest).toMatchObject({ status: "cancelled", request_counts: { total: 5, completed: 0, failed: 0 }, output: { bytes: 0, lines: 0 }, errors: null, segments: 0 });
  });
});

import { describe, expect, it } from "vitest";
import { claimChunk, keys, LeaseLost, type ChunkRow } from "@barge/core";
import { startChunk, createEngineClient, buildResultLine, commitSegment } from "@barge/agent/testing";
import { testLog, type TestContext } from "../support/context.js";
import { chatLine, listKeys, seedBatch, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

describe("agent: fencing", () => {
  const suite = suiteResources();

  const context = (): Promise<TestContext> => suite.context({ CHUNK_SIZE: "100", SEGMENT_MAX_LINES: "1", LEASE_SECONDS: "2", AGENT_CONCURRENCY: "2" });

  /** What a rescue plus a re-claim by another agent does to the stale holder's lease: a new fence. */
  const bumpFence = (ctx: TestContext, c: ChunkRow) =>
    ctx.db
      .updateTable("chunks")
      .set((eb) => ({ fence: eb("fence", "+", 1), leased_by: "other-agent" }))
      .where("batch_id", "=", c.batch_id)
      .where("idx", "=", c.idx)
      .execute();

  const chunkRow = (ctx: TestContext, c: ChunkRow) =>
    ctx.db.selectFrom("chunks").selectAll().where("batch_id", "=", c.batch_id).where("idx", "=", c.idx).executeTakeFirstOrThrow();
  const segmentRows = (ctx: TestContext, batchId: string) =>
    ctx.db.selectFrom("segments").selectAll().where("batch_id", "=", batchId).orderBy("seq").execute();

  it("rejects a segment commit by a holder whose fence was bumped, leaving no segment row", async () => {
    const ctx = await context();
    const { batchId } = await seedBatch(ctx, [chatLine("a", "one"), chatLine("b", "two")]);
    const stale = (await claimChunk(ctx.db, { agentId: "stale-agent", models: ["barge-sim-1"], leaseSeconds: 30 }))!;
    expect(stale.fence).toBe(1);
    await bumpFence(ctx, stale);

    const entry = {
      result: buildResultLine("a", { kind: "response", status: 200, body: { ok: true }, requestId: `${batchId}:0`, attempts: 1 }),
      requestIndex: 0,
      end: stale.end_offset,
      lineNo: stale.start_line,
    };
    const ref = { batchId, idx: stale.idx, fence: stale.fence };
    await expect(commitSegment(ctx, ref, 0, [entry])).rejects.toBeInstanceOf(LeaseLost);
    expect(await segmentRows(ctx, batchId)).toEqual([]);
    // The fenced-out writer deletes the object it had PUT: nobody will ever reference it.
    expect(await listKeys(ctx, `batches/${batchId}/`)).toEqual([]);
    const after = await chunkRow(ctx, stale);
    expect([after.committed, after.next_seq, after.next_offset, after.completed]).toEqual([0, 0, stale.next_offset, 0]);

    // The current holder's identical commit goes through, so the rejection above was the fence alone.
    await commitSegment(ctx, { ...ref, fence: stale.fence + 1 }, 0, [entry]);
    const rows = await segmentRows(ctx, batchId);
    expect(rows.map((r) => [r.kind, r.seq, r.lines, r.s3_key])).toEqual([["output", 0, 1, keys.segment(batchId, "output", 0, 0, 2)]]);
    expect((await chunkRow(ctx, stale)).committed).toBe(1);
    // A replay of the same segment number is rejected too (the checkpoint checks next_seq), and
    // the committed object it re-wrote under the same key is kept.
    await expect(commitSegment(ctx, { ...ref, fence: stale.fence + 1 }, 0, [entry])).rejects.toBeInstanceOf(LeaseLost);
    expect(await segmentRows(ctx, batchId)).toHaveLength(1);
    expect(await listKeys(ctx, `batches/${batchId}/`)).toEqual([keys.segment(batchId, "output", 0, 0, 2)]);
  });

  it("records a failed request in the same fenced transaction as its error line", async () => {
    const ctx = await context();
    const { batchId } = await seedBatch(ctx, [chatLine("a", "one"), chatLine("b", "two")]);
    const stale = (await claimChunk(ctx.db, { agentId: "stale-agent", models: ["barge-sim-1"], leaseSeconds: 30 }))!;
    await bumpFence(ctx, stale);
    const entry = {
      result: buildResultLine("a", { kind: "response", status: 400, body: { error: { message: "no" } }, requestId: `${batchId}:0`, attempts: 1 }),
      requestIndex: 0,
      end: stale.start_offset + 10,
      lineNo: stale.start_line,
    };
    const errorRows = () => ctx.db.selectFrom("request_errors").selectAll().where("batch_id", "=", batchId).execute();
    await expect(commitSegment(ctx, { batchId, idx: stale.idx, fence: stale.fence }, 0, [entry])).rejects.toBeInstanceOf(LeaseLost);
    expect(await errorRows()).toEqual([]);
    await commitSegment(ctx, { batchId, idx: stale.idx, fence: stale.fence + 1 }, 0, [entry]);
    expect((await errorRows()).map((r) => [r.request_index, r.chunk_idx, r.custom_id, r.line, r.code, r.message, r.status_code, r.attempts])).toEqual([
      [0, 0, "a", 1, "engine_error", "no", 400, 1],
    ]);
    expect((await chunkRow(ctx, stale)).failed).toBe(1);
  });

  it("stops a running chunk whose lease was taken over, committing nothing after that", async () => {
    const ctx = await context();
    const sim = await suite.sim({ models: ["barge-sim-1"], decodeTokensPerSec: 80 });
    const engine = createEngineClient({ baseUrl: sim.url, connections: 2, timeoutMs: 30_000, maxAttempts: 1 });
    suite.cleanup(() => engine.close());
    const { batchId } = await seedBatch(ctx, Array.from({ length: 30 }, (_, i) => chatLine(`c${i}`, `slow ${i}`)));
    const chunk = (await claimChunk(ctx.db, { agentId: "runner", models: ["barge-sim-1"], leaseSeconds: 30 }))!;

    const run = startChunk({ db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, engine, log: testLog, config: ctx.config }, chunk);
    await waitFor("a first committed segment", async () => (await segmentRows(ctx, batchId)).length >= 1);
    await bumpFence(ctx, chunk);
    const atBump = await chunkRow(ctx, chunk);

    expect(await run.done).toBe("lost");
    const after = await chunkRow(ctx, chunk);
    expect(after.committed).toBe(atBump.committed);
    expect(after.next_seq).toBe(atBump.next_seq);
    expect(after.status).toBe("leased");
    expect(after.committed).toBeLessThan(30);
    expect(await segmentRows(ctx, batchId)).toHaveLength(atBump.next_seq);
    // Objects a stale commit may have PUT before its transaction failed are never referenced.
    const referenced = new Set((await segmentRows(ctx, batchId)).map((r) => r.s3_key));
    const orphans = (await listKeys(ctx, `batches/${batchId}/`)).filter((k) => !referenced.has(k));
    expect(orphans.every((k) => k.endsWith(`.${chunk.fence}.output.jsonl`))).toBe(true);
    expect(orphans.length).toBeLessThanOrEqual(1);
  });

  it("a holder that lost its lease before starting sends nothing", async () => {
    const ctx = await context();
    const sim = await suite.sim({ models: ["barge-sim-1"] });
    const engine = createEngineClient({ baseUrl: sim.url, connections: 2, timeoutMs: 30_000, maxAttempts: 1 });
    suite.cleanup(() => engine.close());
    await seedBatch(ctx, [chatLine("a", "one"), chatLine("b", "two")]);
    const chunk = (await claimChunk(ctx.db, { agentId: "runner", models: ["barge-sim-1"], leaseSeconds: 30 }))!;
    await bumpFence(ctx, chunk);
    const run = startChunk({ db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, engine, log: testLog, config: ctx.config }, chunk);
    expect(await run.done).toBe("lost");
    expect(sim.requests()).toHaveLength(0);
    expect(await segmentRows(ctx, chunk.batch_id)).toEqual([]);
  });
});

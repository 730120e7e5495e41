import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { claimBatchWork, claimChunk, expireBatches, LeaseLost, releaseChunk } from "@barge/core";
import { buildResultLine, commitSegment, finalizeBatch } from "@barge/agent/testing";
import { testLog, type TestContext } from "../support/context.js";
import { batchRow, chunkRows } from "../support/results.js";
import { chatLine, seedBatch, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

// Usage is written with each commit, so it must move exactly as the committed counters do, on
// every path that moves them: a runner's segment, a given-up chunk, a finalizer's batch_expired lines.

const today = () => new Date().toISOString().slice(0, 10);

/** A batch's usage rows as `[day, tenant, model, requests, failed, prompt, completion, cached, reasoning]`. */
async function usageRows(ctx: TestContext, batchId: string) {
  const rows = await ctx.db
    .selectFrom("tenant_usage")
    .selectAll()
    .select(sql<string>`to_char(day, 'YYYY-MM-DD')`.as("day"))
    .where("batch_id", "=", batchId)
    .execute();
  return rows.map((r) => [
    r.day,
    r.tenant,
    r.model,
    r.requests,
    r.failed,
    r.prompt_tokens,
    r.completion_tokens,
    r.cached_tokens,
    r.reasoning_tokens,
  ]);
}

/** An engine answer with every usage figure set. */
const answered = (customId: string, requestId: string, n: number) =>
  buildResultLine(customId, {
    kind: "response",
    status: 200,
    body: { usage: { prompt_tokens: 10 * n, completion_tokens: n, prompt_tokens_details: { cached_tokens: 2 * n }, completion_tokens_details: { reasoning_tokens: n - 1 } } },
    requestId,
    attempts: 1,
  });

describe("agent: tenant usage follows the committed counters", () => {
  const suite = suiteResources();

  it("adds a segment's requests and tokens in its fenced commit; a fenced-out commit adds nothing", async () => {
    const ctx = await suite.context({ CHUNK_SIZE: "100" });
    const { batchId } = await seedBatch(ctx, [chatLine("a", "one"), chatLine("b", "two"), chatLine("c", "three")], { tenant: "team-a" });
    const held = (await claimChunk(ctx.db, { agentId: "stale", models: ["barge-sim-1"], leaseSeconds: 30 }))!;
    const segment = [
      { result: answered("a", `${batchId}:0`, 3), requestIndex: 0, end: held.start_offset + 10, lineNo: held.start_line },
      { result: answered("b", `${batchId}:1`, 5), requestIndex: 1, end: held.start_offset + 20, lineNo: held.start_line + 1 },
      {
        result: buildResultLine("c", { kind: "response", status: 400, body: { error: { message: "no" }, usage: { prompt_tokens: 99 } }, requestId: `${batchId}:2`, attempts: 1 }),
        requestIndex: 2,
        end: held.end_offset,
        lineNo: held.start_line + 2,
      },
    ];
    const ref = { batchId, idx: held.idx, fence: held.fence };
    await ctx.db.updateTable("chunks").set((eb) => ({ fence: eb("fence", "+", 1) })).where("batch_id", "=", batchId).execute();
    await expect(commitSegment(ctx, ref, 0, segment)).rejects.toBeInstanceOf(LeaseLost);
    expect(await usageRows(ctx, batchId)).toEqual([]);

    await commitSegment(ctx, { ...ref, fence: held.fence + 1 }, 0, segment.slice(0, 1));
    await commitSegment(ctx, { ...ref, fence: held.fence + 1 }, 1, segment.slice(1));
    // An error line counts as a request and a failure, and its body's tokens are not usage.
    expect(await usageRows(ctx, batchId)).toEqual([[today(), "team-a", "barge-sim-1", 3, 1, 80, 8, 16, 6]]);
    const [chunk] = await chunkRows(ctx, batchId);
    expect([chunk!.committed, chunk!.failed, chunk!.prompt_tokens, chunk!.completion_tokens, chunk!.cached_tokens, chunk!.reasoning_tokens]).toEqual([3, 1, 80, 8, 16, 6]);
  });

  it("counts a given-up chunk's uncommitted requests as failed requests", async () => {
    const ctx = await suite.context({ CHUNK_SIZE: "100", CHUNK_MAX_ATTEMPTS: "1", AGENT_POLL_MS: "50" });
    const sim = await suite.sim({ models: ["barge-sim-1"] });
    const lines = [chatLine("a", "one"), chatLine("b", "two"), chatLine("c", "three"), chatLine("d", "four")];
    const { batchId } = await seedBatch(ctx, lines);
    const held = (await claimChunk(ctx.db, { agentId: "first", models: ["barge-sim-1"], leaseSeconds: 30 }))!;
    const end = held.start_offset + Buffer.byteLength(`${JSON.stringify(lines[0])}\n`);
    const first = { result: answered("a", `${batchId}:0`, 2), requestIndex: 0, end, lineNo: held.start_line };
    await commitSegment(ctx, { batchId, idx: held.idx, fence: held.fence }, 0, [first]);
    // Postgres refused this run's next results: with CHUNK_MAX_ATTEMPTS 1 the next claim gives the chunk up.
    expect(await releaseChunk(ctx.db, { batchId, idx: held.idx, fence: held.fence, unstorableError: "refused" })).toBe(true);

    await suite.agent(ctx, { engineUrl: sim.url, agentId: "giver" }).start();
    await waitFor("the batch to complete", async () => ((await batchRow(ctx, batchId)).status === "completed" ? true : undefined));
    const [chunk] = await chunkRows(ctx, batchId);
    expect([chunk!.status, chunk!.committed, chunk!.completed, chunk!.failed]).toEqual(["done", 4, 1, 3]);
    expect(sim.requests()).toHaveLength(0);
    expect(await usageRows(ctx, batchId)).toEqual([[today(), "default", "barge-sim-1", 4, 3, 20, 2, 4, 1]]);
  });

  it("counts the batch_expired lines a finalizer writes into an expired batch's sealed chunks", async () => {
    const ctx = await suite.context({ CHUNK_SIZE: "2" });
    const lines = Array.from({ length: 5 }, (_, i) => chatLine(`x-${i}`, `expiring ${i}`));
    const { batchId } = await seedBatch(ctx, lines, { tenant: "team-e" });
    const held = (await claimChunk(ctx.db, { agentId: "runner", models: ["barge-sim-1"], leaseSeconds: 30 }))!;
    // The checkpoint must sit just past the first line: the finalizer reads on from there.
    const end = held.start_offset + Buffer.byteLength(`${JSON.stringify(lines[0])}\n`);
    const first = { result: answered("x-0", `${batchId}:0`, 4), requestIndex: 0, end, lineNo: held.start_line };
    await commitSegment(ctx, { batchId, idx: held.idx, fence: held.fence }, 0, [first]);
    expect(await releaseChunk(ctx.db, { batchId, idx: held.idx, fence: held.fence })).toBe(true);
    await ctx.db.updateTable("batches").set({ expires_at: new Date(Date.now() - 1000) }).where("id", "=", batchId).execute();
    expect(await expireBatches(ctx.db)).toEqual([batchId]);

    const claimed = (await claimBatchWork(ctx.db, { workerId: "finalizer", kinds: ["finalizing"], leaseSeconds: 30, batchId }))!;
    const deps = { db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, log: testLog, leaseSeconds: 30, segmentMaxLines: 1 };
    expect(await finalizeBatch(deps, claimed)).toBe("expired");
    expect((await chunkRows(ctx, batchId)).map((c) => [c.committed, c.completed, c.failed])).toEqual([
      [2, 1, 1],
      [2, 0, 2],
      [1, 0, 1],
    ]);
    expect(await usageRows(ctx, batchId)).toEqual([[today(), "team-e", "barge-sim-1", 5, 4, 40, 4, 8, 3]]);
  });
});

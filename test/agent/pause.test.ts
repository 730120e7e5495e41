import { describe, expect, it } from "vitest";
import { failureThresholdError, keys, pauseBatch, recordBatchEvent, resumeBatch, type Db } from "@barge/core";
import { type TestContext } from "../support/context.js";
import { batchRow, chunkRows, committedCount, readResults, requestIndexOf } from "../support/results.js";
import { chatLine, readObject, seedBatch, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

const TOTAL = 24;

const pause = (db: Db, id: string) =>
  db.transaction().execute(async (tx) => {
    const row = await pauseBatch(tx, id);
    if (row) await recordBatchEvent(tx, id, "paused");
    return row;
  });
const resume = (db: Db, id: string) =>
  db.transaction().execute(async (tx) => {
    const row = await resumeBatch(tx, id);
    if (row) await recordBatchEvent(tx, id, "resumed");
    return row;
  });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("agent: pause and resume", () => {
  const suite = suiteResources();

  it("a paused batch's runs commit what is in flight and hand their chunks back; nothing is claimed until resume; then every request runs once, in order", async () => {
    const ctx: TestContext = await suite.context({ CHUNK_SIZE: "8", SEGMENT_MAX_LINES: "1", LEASE_SECONDS: "2", AGENT_CONCURRENCY: "2", AGENT_POLL_MS: "50", API_POLL_MS: "50" });
    // 160-960 ms a request: the pause lands while requests are running.
    const sim = await suite.sim({ models: ["barge-sim-1"], decodeTokensPerSec: 50 });
    const agent = suite.agent(ctx, { engineUrl: sim.url, agentId: "pause-agent" });
    const { batchId } = await seedBatch(ctx, Array.from({ length: TOTAL }, (_, i) => chatLine(`p-${i}`, `pause me ${i}`)));
    await agent.start();
    await waitFor("two committed requests", async () => (await committedCount(ctx, batchId)) >= 2);

    expect((await pause(ctx.db, batchId))?.paused_at).not.toBeNull();
    const released = await waitFor("every chunk handed back", async () => {
      const chunks = await chunkRows(ctx, batchId);
      return chunks.every((c) => c.status !== "leased") ? chunks : undefined;
    });
    const sent = sim.requests().length;
    const committed = released.reduce((n, c) => n + c.committed, 0);
    // In-flight requests were let finish and committed: the engine saw exactly what was committed.
    expect(committed).toBe(sent);
    expect(committed).toBeLessThan(TOTAL);
    expect(released.filter((c) => c.status === "queued").length).toBeGreaterThanOrEqual(1);
    // A hand-back for a pause is no failure and no attempt: a queued chunk looks never claimed.
    for (const c of released) {
      expect(c.failures).toBe(0);
      expect(c.leased_by).toBeNull();
      expect(c.attempts).toBe(c.status === "done" ? 1 : 0);
    }

    // Several lease beats and claim polls later, still nothing new was claimed or sent.
    await sleep(2500);
    expect(sim.requests().length).toBe(sent);
    expect(await chunkRows(ctx, batchId)).toEqual(released);
    const paused = await batchRow(ctx, batchId);
    expect(paused.status).toBe("in_progress");

    expect((await resume(ctx.db, batchId))?.paused_at).toBeNull();
    const done = await waitFor("the batch to complete", async () => {
      const b = await batchRow(ctx, batchId);
      return b.status === "completed" ? b : undefined;
    });
    const { output, errors } = await readResults(ctx, done);
    expect(errors).toEqual([]);
    expect(output.map((l) => l.custom_id)).toEqual(Array.from({ length: TOTAL }, (_, i) => `p-${i}`));
    // Each request reached the engine exactly once, across the pause.
    expect(sim.requests().map((r) => requestIndexOf(r.requestId)).sort((a, b) => a - b)).toEqual(Array.from({ length: TOTAL }, (_, i) => i));
    for (const c of await chunkRows(ctx, batchId)) expect([c.status, c.attempts, c.failures]).toEqual(["done", 1, 0]);
    const events = await ctx.db.selectFrom("batch_events").select("kind").where("batch_id", "=", batchId).where("kind", "in", ["paused", "resumed"]).orderBy("seq").execute();
    expect(events.map((e) => e.kind)).toEqual(["paused", "resumed"]);
  });
});

describe("agent: the failure threshold", () => {
  const suite = suiteResources();
  const LINES = 60;
  // Three requests in four carry engine-sim's permanent-400 marker.
  const failing = (i: number) => i % 4 !== 0;
  const lines = (prefix: string) => Array.from({ length: LINES }, (_, i) => chatLine(`${prefix}-${i}`, failing(i) ? `__sim_fail_400__ #${i}` : `fine ${i}`));
  const setThreshold = (ctx: TestContext, id: string, rate: number, min: number) =>
    ctx.db.updateTable("batches").set({ max_failure_rate: rate, min_requests: min }).where("id", "=", id).execute();
  const finished = (ctx: TestContext, id: string) =>
    waitFor(`batch ${id} to finish`, async () => {
      const b = await batchRow(ctx, id);
      return ["completed", "cancelled", "failed", "expired"].includes(b.status) ? b : undefined;
    });

  it("past min_requests, a committed failure rate above max_failure_rate cancels the batch with its reason and publishes what was committed; below it, the batch completes", async () => {
    const ctx: TestContext = await suite.context({ CHUNK_SIZE: "10", SEGMENT_MAX_LINES: "5", LEASE_SECONDS: "2", AGENT_CONCURRENCY: "2", AGENT_POLL_MS: "50", API_POLL_MS: "50" });
    const sim = await suite.sim({ models: ["barge-sim-1"], decodeTokensPerSec: 400 });
    const agent = suite.agent(ctx, { engineUrl: sim.url, agentId: "threshold-agent" });
    const { batchId, tenant } = await seedBatch(ctx, lines("t"));
    await setThreshold(ctx, batchId, 0.5, 20);
    await agent.start();

    const batch = await finished(ctx, batchId);
    expect([batch.status, batch.cancel_reason]).toEqual(["cancelled", "failure_threshold"]);
    const events = await ctx.db.selectFrom("batch_events").select(["kind", "data"]).where("batch_id", "=", batchId).where("kind", "=", "failure_threshold").execute();
    expect(events).toHaveLength(1);
    const data = events[0]!.data as unknown as { done: number; failed: number; rate: number };
    // It fired at the first commit that saw min_requests done. Two runs commit 5-line segments, so
    // before it at most two commits (19 + 5 + 5) could each have missed the other's.
    expect(data.done).toBeGreaterThanOrEqual(20);
    expect(data.done).toBeLessThanOrEqual(34);
    expect(data.rate).toBe(data.failed / data.done);
    expect(data.rate).toBeGreaterThan(0.5);
    expect(batch.errors).toEqual([failureThresholdError({ done: data.done, failed: data.failed, maxFailureRate: 0.5 })]);
    expect(batch.errors![0]!.message).toContain(`${data.failed} of ${data.done} requests done failed`);

    // The partial results are published: each chunk's committed prefix, split into output and errors, in input order.
    const chunks = await chunkRows(ctx, batchId);
    const committed = chunks.flatMap((c) => Array.from({ length: c.committed }, (_, k) => c.request_start + k));
    expect(committed.length).toBeLessThan(LINES);
    expect(committed.length).toBeGreaterThanOrEqual(data.done);
    const { output, errors } = await readResults(ctx, batch);
    expect(output.map((l) => l.custom_id)).toEqual(committed.filter((i) => !failing(i)).map((i) => `t-${i}`));
    expect(errors.map((l) => l.custom_id)).toEqual(committed.filter(failing).map((i) => `t-${i}`));
    expect(JSON.parse(await readObject(ctx, keys.manifest(tenant, batchId)))).toMatchObject({
      status: "cancelled",
      request_counts: { total: LINES, completed: output.length, failed: errors.length },
    });

    // The same input under a looser threshold runs to the end.
    const loose = await seedBatch(ctx, lines("u"));
    await setThreshold(ctx, loose.batchId, 0.8, 20);
    const done = await finished(ctx, loose.batchId);
    expect([done.status, done.cancel_reason, done.errors]).toEqual(["completed", null, null]);
    const all = await readResults(ctx, done);
    expect([all.output.length, all.errors.length]).toEqual([LINES / 4, (LINES * 3) / 4]);
  });
});

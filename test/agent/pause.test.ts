import { describe, expect, it } from "vitest";
import { pauseBatch, recordBatchEvent, resumeBatch, type Db } from "@barge/core";
import { type TestContext } from "../support/context.js";
import { batchRow, chunkRows, committedCount, readResults, requestIndexOf } from "../support/results.js";
import { chatLine, seedBatch, waitFor } from "../support/seed.js";
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

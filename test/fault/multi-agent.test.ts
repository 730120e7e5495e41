import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgent } from "@barge/agent";
import { createEngineSim, type EngineSim } from "@barge/engine-sim";
import { createTestContext, testLog, type TestContext } from "../support/context.js";
import { faultSuite } from "../support/fault-suite.js";
import { eventually } from "../support/processes.js";
import { batchRow, chunkRows, normalized, readResults, type ResultLine } from "../support/results.js";
import { chatLine, seedBatch } from "../support/seed.js";

const TOTAL = 48;
const FAILING = new Set([7, 33, 46]);
const requests = Array.from({ length: TOTAL }, (_, i) => chatLine(`m-${i}`, FAILING.has(i) ? `__sim_fail_400__ ${i}` : `many hands ${i}`));

describe("fault: several agents on one batch", () => {
  // The context and engine-sim are the suite's (beforeAll); after each test only the agent processes go.
  const { children } = faultSuite();
  let ctx: TestContext;
  let sim: EngineSim;
  let solo: { output: ResultLine[]; errors: ResultLine[] };

  const finished = (batchId: string) =>
    eventually(`batch ${batchId} to complete`, async () => {
      const b = await batchRow(ctx, batchId);
      return b.status === "completed" ? b : undefined;
    });

  beforeAll(async () => {
    ctx = await createTestContext({ CHUNK_SIZE: "4", SEGMENT_MAX_LINES: "2", LEASE_SECONDS: "3", AGENT_POLL_MS: "50", API_POLL_MS: "50", AGENT_CONCURRENCY: "2" });
    // 67-400 ms a request: a chunk takes about half a second, so no agent can take them all.
    sim = await createEngineSim({ models: ["barge-sim-1"], decodeTokensPerSec: 120 });
    // The reference: the same input run by one agent alone.
    const agent = createAgent({ db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, config: ctx.config, log: testLog, engineUrl: sim.url, agentId: "solo" });
    await agent.start();
    try {
      const { batchId } = await seedBatch(ctx, requests);
      solo = await readResults(ctx, await finished(batchId));
    } finally {
      await agent.stop({ graceful: false });
    }
  });
  afterAll(async () => {
    await sim?.close();
    await ctx?.close();
  });

  it.each([2, 3])("%i agent processes share the chunks and write exactly the single-agent output", async (n) => {
    const ids = Array.from({ length: n }, (_, i) => `crew-${n}-${i}`);
    for (const id of ids) children.agent({ ...ctx.env, VLLM_URL: sim.url }, id);
    await eventually(`${n} agents to register`, async () => {
      const rows = await ctx.db.selectFrom("agents").select("id").where("id", "in", ids).execute();
      return rows.length === n;
    });
    const { batchId } = await seedBatch(ctx, requests);
    const results = await readResults(ctx, await finished(batchId));

    // Spread: every agent completed at least one chunk, and nobody else did.
    const chunks = await chunkRows(ctx, batchId);
    expect(chunks).toHaveLength(TOTAL / 4);
    const doneBy = new Map<string, number>();
    for (const c of chunks) doneBy.set(c.done_by ?? "nobody", (doneBy.get(c.done_by ?? "nobody") ?? 0) + 1);
    expect([...doneBy.keys()].sort()).toEqual(ids);
    expect(chunks.every((c) => c.status === "done" && c.attempts === 1)).toBe(true);

    // The same lines as the single agent wrote, in the same order.
    expect(results.output.map(normalized)).toEqual(solo.output.map(normalized));
    expect(results.errors.map(normalized)).toEqual(solo.errors.map(normalized));
    expect(results.output).toHaveLength(TOTAL - FAILING.size);
    expect(results.errors.map((l) => l.custom_id)).toEqual(["m-7", "m-33", "m-46"]);
  });
});

import { describe, expect, it } from "vitest";
import type { TestContext } from "../support/context.js";
import { chatLine, seedBatch, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

// An agent claims only chunks of the models its engine lists in /v1/models: a chunk it cannot
// serve stays queued, untouched, for an agent whose engine can.

describe("agent: model-aware claiming", () => {
  const suite = suiteResources();

  const chunks = (ctx: TestContext, batchId: string) =>
    ctx.db.selectFrom("chunks").select(["idx", "model", "status", "leased_by", "attempts"]).where("batch_id", "=", batchId).orderBy("idx").execute();
  const completed = (ctx: TestContext, batchId: string) =>
    waitFor(`batch ${batchId} to complete`, async () => {
      const b = await ctx.db.selectFrom("batches").select("status").where("id", "=", batchId).executeTakeFirstOrThrow();
      return b.status === "completed";
    });

  it("an agent serving one model never claims another model's chunks", async () => {
    const ctx = await suite.context({ CHUNK_SIZE: "5", AGENT_POLL_MS: "50", API_POLL_MS: "50", AGENT_CONCURRENCY: "4" });
    const simA = await suite.sim({ models: ["model-a"] });
    const simB = await suite.sim({ models: ["model-b"] });
    // Batch B is older, so a claim that ignored the model would take its chunks first.
    const b = await seedBatch(ctx, Array.from({ length: 10 }, (_, i) => chatLine(`b${i}`, `for b ${i}`, { model: "model-b" })));
    const a = await seedBatch(ctx, Array.from({ length: 10 }, (_, i) => chatLine(`a${i}`, `for a ${i}`, { model: "model-a" })));

    const agentA = suite.agent(ctx, { engineUrl: simA.url, agentId: "agent-a" });
    await agentA.start();
    await completed(ctx, a.batchId);
    // Agent A claimed twice while B's older chunks waited at the head of the queue: a claim blind
    // to the model would have taken those first.

    expect(await chunks(ctx, a.batchId)).toEqual([
      { idx: 0, model: "model-a", status: "done", leased_by: null, attempts: 1 },
      { idx: 1, model: "model-a", status: "done", leased_by: null, attempts: 1 },
    ]);
    expect(await chunks(ctx, b.batchId)).toEqual([
      { idx: 0, model: "model-b", status: "queued", leased_by: null, attempts: 0 },
      { idx: 1, model: "model-b", status: "queued", leased_by: null, attempts: 0 },
    ]);
    // Who ran what is in each engine's request log: every request id is `<batch>:<index>`.
    const ran = (sim: typeof simA) => sim.requests().map((r) => `${r.model} ${r.status} ${r.requestId}`).sort();
    const expected = (model: string, batchId: string) => Array.from({ length: 10 }, (_, i) => `${model} 200 ${batchId}:${i}`).sort();
    expect(ran(simA)).toEqual(expected("model-a", a.batchId));

    const agentB = suite.agent(ctx, { engineUrl: simB.url, agentId: "agent-b" });
    await agentB.start();
    await completed(ctx, b.batchId);
    expect(await chunks(ctx, b.batchId)).toEqual([
      { idx: 0, model: "model-b", status: "done", leased_by: null, attempts: 1 },
      { idx: 1, model: "model-b", status: "done", leased_by: null, attempts: 1 },
    ]);
    expect(ran(simA)).toEqual(expected("model-a", a.batchId));
    expect(ran(simB)).toEqual(expected("model-b", b.batchId));
  });
});

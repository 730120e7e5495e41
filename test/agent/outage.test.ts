import { describe, expect, it } from "vitest";
import { createEngineSim, type EngineSim } from "@barge/engine-sim";
import { batchRow, chunkRows, readResults, requestIndexOf } from "../support/results.js";
import { chatLine, seedBatch, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

describe("agent: engine outage versus single-request failures", () => {
  const suite = suiteResources();

  it("the engine going away releases the chunk with no error lines, and the agent resumes once it is back", async () => {
    const ctx = await suite.context({ CHUNK_SIZE: "30", SEGMENT_MAX_LINES: "2", LEASE_SECONDS: "3", AGENT_POLL_MS: "50", API_POLL_MS: "50", AGENT_CONCURRENCY: "2", ENGINE_MAX_ATTEMPTS: "2" });
    let sim: EngineSim = await createEngineSim({ models: ["barge-sim-1"], decodeTokensPerSec: 100 });
    suite.cleanup(() => sim.close());
    const requests = Array.from({ length: 30 }, (_, i) => chatLine(`o-${i}`, `outage ${i}`));
    const { batchId } = await seedBatch(ctx, requests);
    const agent = suite.agent(ctx, { engineUrl: sim.url, agentId: "outage" });
    await agent.start();
    await waitFor("a few commits", async () => (await chunkRows(ctx, batchId))[0]!.committed >= 4);

    await sim.close();
    const released = await waitFor("the chunk to be released", async () => {
      const [c] = await chunkRows(ctx, batchId);
      return c!.status === "queued" ? c : undefined;
    });
    // Released: no request was failed for the outage; the run counts towards the poison cap. (The
    // agent may claim and release once more before the engine's last connections close.)
    expect([released.failed, released.leased_by]).toEqual([0, null]);
    expect(released.failures).toBeGreaterThanOrEqual(1);
    expect(released.committed).toBeLessThan(30);

    sim = await createEngineSim({ models: ["barge-sim-1"], port: sim.port });
    const batch = await waitFor("the batch to complete", async () => {
      const b = await batchRow(ctx, batchId);
      return b.status === "completed" ? b : undefined;
    });
    const { output, errors } = await readResults(ctx, batch);
    expect(errors).toEqual([]);
    expect(output.map((l) => l.custom_id)).toEqual(requests.map((r) => r.custom_id));
    // Every claim but the last ended in an outage release.
    const [done] = await chunkRows(ctx, batchId);
    expect([done!.status, done!.attempts]).toEqual(["done", done!.failures + 1]);
    expect(done!.failures).toBeGreaterThanOrEqual(released.failures);
    // The second engine life ran exactly what was left after the checkpoint.
    expect(sim.requests().map((r) => requestIndexOf(r.requestId)).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 30 - released.committed }, (_, k) => released.committed + k),
    );
  });

  it("a healthy engine cutting single requests: they are retried, then written as engine_unavailable errors", async () => {
    const ctx = await suite.context({ CHUNK_SIZE: "10", LEASE_SECONDS: "3", AGENT_POLL_MS: "50", API_POLL_MS: "50", AGENT_CONCURRENCY: "2", ENGINE_MAX_ATTEMPTS: "2" });
    // Every request hangs and has its connection dropped at once; /v1/models keeps answering.
    const sim = await suite.sim({ models: ["barge-sim-1"], timeoutRate: 1, hangMs: 0 });
    const requests = Array.from({ length: 4 }, (_, i) => chatLine(`u-${i}`, `cut ${i}`));
    const { batchId } = await seedBatch(ctx, requests);
    const agent = suite.agent(ctx, { engineUrl: sim.url, agentId: "cut" });
    await agent.start();
    const batch = await waitFor("the batch to complete", async () => {
      const b = await batchRow(ctx, batchId);
      return b.status === "completed" ? b : undefined;
    });

    const { output, errors } = await readResults(ctx, batch);
    expect(output).toEqual([]);
    expect(errors.map((l) => [l.custom_id, l.response, l.error?.code])).toEqual(requests.map((r) => [r.custom_id, null, "engine_unavailable"]));
    const rows = await ctx.db.selectFrom("request_errors").selectAll().where("batch_id", "=", batchId).orderBy("request_index").execute();
    expect(rows.map((r) => [r.custom_id, r.code, r.attempts, r.status_code])).toEqual(requests.map((r) => [r.custom_id, "engine_unavailable", 2, null]));
    // Each request was tried exactly ENGINE_MAX_ATTEMPTS times, and the chunk ran once.
    for (let i = 0; i < 4; i++) expect(sim.requests().filter((r) => requestIndexOf(r.requestId) === i), `request ${i}`).toHaveLength(2);
    expect((await chunkRows(ctx, batchId))[0]!.attempts).toBe(1);
  });
});

import { describe, expect, it } from "vitest";
import { type Agent } from "@barge/agent";
import { batchProgress } from "@barge/core";
import { batchRow, chunkRows, readResults } from "../support/results.js";
import { chatLine, seedBatch, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

const TOTAL = 20;

describe("agent: poison chunk", () => {
  const suite = suiteResources();

  it("after CHUNK_MAX_ATTEMPTS crashed claims, fails the chunk's remaining requests as chunk_failed so the batch finishes", async () => {
    const ctx = await suite.context({ CHUNK_SIZE: "20", SEGMENT_MAX_LINES: "2", LEASE_SECONDS: "2", AGENT_POLL_MS: "50", API_POLL_MS: "50", AGENT_CONCURRENCY: "2", CHUNK_MAX_ATTEMPTS: "2" });
    const sim = await suite.sim({ models: ["barge-sim-1"], decodeTokensPerSec: 100 });
    const requests = Array.from({ length: TOTAL }, (_, i) => chatLine(`x-${i}`, `poison ${i}`));
    const { batchId } = await seedBatch(ctx, requests);
    const agent = (id: string): Agent => {
      const a = suite.agent(ctx, { engineUrl: sim.url, agentId: id });
      return a;
    };

    // Two agents in a row crash while holding the chunk (a hard stop leaves the lease to lapse).
    let committed = 0;
    for (const id of ["crash-1", "crash-2"]) {
      const a = agent(id);
      await a.start();
      const held = await waitFor(`${id} to commit`, async () => {
        const [c] = await chunkRows(ctx, batchId);
        return c!.leased_by === id && c!.committed > committed && c!.committed < TOTAL - 4 ? c : undefined;
      });
      await a.stop({ graceful: false });
      committed = (await chunkRows(ctx, batchId))[0]!.committed;
      expect(committed).toBeGreaterThanOrEqual(held.committed);
    }
    // Requests a crashed agent already had on the wire may still land on the engine after it stopped,
    // as with a real crash; once its lease has lapsed nothing of it is left in flight.
    await waitFor("the second crash's lease to lapse", async () => {
      const [c] = await chunkRows(ctx, batchId);
      return c!.lease_expires_at !== null && new Date(c!.lease_expires_at).getTime() < Date.now();
    });
    const sentBefore = sim.requests().length;

    await agent("third").start();
    const batch = await waitFor("the batch to complete", async () => {
      const b = await batchRow(ctx, batchId);
      return b.status === "completed" ? b : undefined;
    });
    const [c] = await chunkRows(ctx, batchId);
    expect([c!.status, c!.failures, c!.attempts, c!.committed, c!.done_by]).toEqual(["done", 2, 3, TOTAL, "third"]);
    // The poisoned remainder never reached the engine.
    expect(sim.requests()).toHaveLength(sentBefore);

    const { output, errors } = await readResults(ctx, batch);
    expect(output.map((l) => l.custom_id)).toEqual(requests.slice(0, committed).map((r) => r.custom_id));
    expect(errors.map((l) => l.custom_id)).toEqual(requests.slice(committed).map((r) => r.custom_id));
    for (const line of errors) {
      expect(line.response).toBeNull();
      expect(line.error).toEqual({
        code: "chunk_failed",
        message: "The request was not run: its chunk failed 2 times (a crash, a failed run or an engine outage each time), so it was given up on.",
      });
    }
    expect((await batchProgress(ctx.db, [batchId])).get(batchId)).toMatchObject({ completed: committed, failed: TOTAL - committed });
    const rows = await ctx.db.selectFrom("request_errors").selectAll().where("batch_id", "=", batchId).orderBy("request_index").execute();
    expect(rows.map((r) => [r.request_index, r.custom_id, r.code, r.attempts, r.status_code, r.line])).toEqual(
      requests.slice(committed).map((r, k) => [committed + k, r.custom_id, "chunk_failed", 0, null, committed + k + 1]),
    );
  });
});

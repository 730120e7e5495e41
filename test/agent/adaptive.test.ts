import { describe, expect, it } from "vitest";
import { chatLine, seedBatch, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

// The agent sizes its in-flight requests from the engine's own gauges: every slot busy, a short
// queue. Judged by the sim's counters (peak running, peak waiting), never by timing.

describe("agent: adaptive concurrency", () => {
  const suite = suiteResources();

  // 8 completion tokens at `decodeTps` tokens/s: 20 ms or 200 ms per request, whatever the slot count.
  const cases = [
    { maxNumSeqs: 8, start: 4, requests: 1500, decodeTps: 400 },
    { maxNumSeqs: 256, start: 16, requests: 8000, decodeTps: 40 },
  ];

  for (const { maxNumSeqs, start, requests, decodeTps } of cases) {
    it(`fills all ${maxNumSeqs} slots of the engine and keeps its queue short`, { timeout: 180_000 }, async () => {
      const ctx = await suite.context({ CHUNK_SIZE: String(requests), AGENT_CONCURRENCY: String(start), AGENT_MAX_CONCURRENCY: "1024", AGENT_POLL_MS: "50", API_POLL_MS: "50", AGENT_METRICS_POLL_MS: "250" });
      const sim = await suite.sim({ models: ["barge-sim-1"], maxNumSeqs, decodeTokensPerSec: decodeTps, requestLog: false });
      const lines = Array.from({ length: requests }, (_, i) => chatLine(`a${i}`, `adaptive ${i}`, { max_tokens: 8 }));
      const { batchId } = await seedBatch(ctx, lines);
      const agent = suite.agent(ctx, { engineUrl: sim.url, agentId: "adaptive" });
      await agent.start();

      const batch = await waitFor(
        `batch ${batchId} to complete`,
        async () => {
          const b = await ctx.db.selectFrom("batches").selectAll().where("id", "=", batchId).executeTakeFirstOrThrow();
          return b.status === "completed" ? b : undefined;
        },
        150_000,
      );
      expect(batch.status).toBe("completed");
      const counters = sim.stats().counters;
      // The limit grew from its start until every slot ran a sequence...
      expect(counters.maxRunning).toBe(maxNumSeqs);
      // ...without flooding the engine's queue on the way or at steady state.
      expect(counters.maxWaiting).toBeGreaterThan(0);
      expect(counters.maxWaiting).toBeLessThanOrEqual(2 * maxNumSeqs);
      expect(counters.completed).toBe(requests);
    });
  }
});

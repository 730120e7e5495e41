import { describe, expect, it } from "vitest";
import { requestIndexOf } from "../support/results.js";
import { chatLine, seedBatch, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

// The agent starts its next chunk while the current one's last requests still run, so the engine
// never drains between chunks, and it never holds more than two chunks. Judged from the sim's
// request log and the chunk rows, never by timing.

const CHUNK = 20;
const CHUNKS = 5;
const TOTAL = CHUNK * CHUNKS;

describe("agent: pipelined chunks", () => {
  const suite = suiteResources();

  it("feeds chunk k+1 before chunk k's last response, holding at most two chunk leases", { timeout: 120_000 }, async () => {
    const ctx = await suite.context({ CHUNK_SIZE: String(CHUNK), SEGMENT_MAX_LINES: "5", AGENT_CONCURRENCY: "8", AGENT_MAX_CONCURRENCY: "8", AGENT_POLL_MS: "50", API_POLL_MS: "50" });
    // 8 slots, 16 tokens at 10 tokens/s: ~1.6 s a request. A run reaches its tail with 8 requests
    // in flight and 8 to send, two request times before its last response: ample for the next
    // claim and range read, even on a loaded machine.
    const sim = await suite.sim({ models: ["barge-sim-1"], maxNumSeqs: 8, decodeTokensPerSec: 10 });
    const { batchId } = await seedBatch(
      ctx,
      Array.from({ length: TOTAL }, (_, i) => chatLine(`p-${i}`, `pipeline ${i}`, { max_tokens: 16 })),
    );
    const agent = suite.agent(ctx, { engineUrl: sim.url, agentId: "piper" });

    // Leases the agent holds, sampled from the chunk rows while it runs.
    const held: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const rows = await ctx.db.selectFrom("chunks").select(["status", "leased_by"]).where("batch_id", "=", batchId).execute();
        held.push(rows.filter((r) => r.status === "leased" && r.leased_by === "piper").length);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await agent.start();
    await waitFor(
      "the batch to complete",
      async () => (await ctx.db.selectFrom("batches").select("status").where("id", "=", batchId).executeTakeFirstOrThrow()).status === "completed",
      100_000,
    );
    sampling = false;
    await sampler;

    const log = sim.requests();
    expect(log.length).toBe(TOTAL);
    expect(log.every((r) => r.status === 200 && r.finishedAt !== null)).toBe(true);
    const chunkOf = (r: (typeof log)[number]) => Math.floor(requestIndexOf(r.requestId) / CHUNK);
    const firstStart = Array.from({ length: CHUNKS }, (_, k) => Math.min(...log.filter((r) => chunkOf(r) === k).map((r) => r.startedAt)));
    const lastFinish = Array.from({ length: CHUNKS }, (_, k) => Math.max(...log.filter((r) => chunkOf(r) === k).map((r) => r.finishedAt!)));
    // Every chunk after the first reached the engine while its predecessor still had a request running.
    for (let k = 0; k + 1 < CHUNKS; k++) expect(firstStart[k + 1]!, `chunk ${k + 1} started before chunk ${k} finished`).toBeLessThan(lastFinish[k]!);

    // Never three chunks in the engine at once: at every request's start, at most two chunks have requests running.
    const chunksRunningAt = (t: number) => new Set(log.filter((r) => r.startedAt <= t && r.finishedAt! > t).map(chunkOf)).size;
    expect(Math.max(...log.map((r) => chunksRunningAt(r.startedAt)))).toBe(2);
    // The in-flight bound is shared across the two runs: the engine never held more than 8 of them.
    const inflightAt = (t: number) => log.filter((r) => r.startedAt <= t && r.finishedAt! > t).length;
    expect(Math.max(...log.map((r) => inflightAt(r.startedAt)))).toBeLessThanOrEqual(8);
    expect(sim.stats().counters.maxWaiting).toBe(0);

    // Never more than two chunk leases, and each chunk was claimed once and finished by this agent.
    expect(held.length).toBeGreaterThan(0);
    expect(Math.max(...held)).toBeLessThanOrEqual(2);
    const rows = await ctx.db.selectFrom("chunks").select(["status", "done_by", "committed", "attempts", "failures"]).where("batch_id", "=", batchId).orderBy("idx").execute();
    expect(rows).toEqual(Array.from({ length: CHUNKS }, () => ({ status: "done", done_by: "piper", committed: CHUNK, attempts: 1, failures: 0 })));
  });
});

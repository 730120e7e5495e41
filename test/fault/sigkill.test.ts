import { describe, expect, it } from "vitest";
import type { TestContext } from "../support/context.js";
import { faultSuite } from "../support/fault-suite.js";
import { eventually } from "../support/processes.js";
import { batchRow, chunkRows, committedCount, committedIndexes, readResults, requestIndexOf } from "../support/results.js";
import { chatLine, seedBatch, segmentsGone } from "../support/seed.js";

const TOTAL = 120;
const KILLS = 3;

describe("fault: SIGKILL the agent mid-chunk, again and again", () => {
  const suite = faultSuite();
  const { children } = suite;

  it("finishes the batch exactly once, in order, re-sending only what was uncommitted at each kill", async () => {
    const ctx: TestContext = await suite.context({
      CHUNK_SIZE: "20",
      SEGMENT_MAX_LINES: "4",
      SEGMENT_MAX_MS: "500",
      LEASE_SECONDS: "3",
      AGENT_POLL_MS: "50",
      API_POLL_MS: "50",
      AGENT_CONCURRENCY: "4",
    });
    // 53-320 ms a request: each agent lives long enough to commit, and dies with work in flight.
    const sim = await suite.sim({ models: ["barge-sim-1"], decodeTokensPerSec: 150 });
    const requests = Array.from({ length: TOTAL }, (_, i) => chatLine(`k-${i}`, `kill me maybe ${i}`));
    const { batchId } = await seedBatch(ctx, requests);

    const sendsOf = () => {
      const n = new Map<number, number>();
      for (const r of sim.requests()) n.set(requestIndexOf(r.requestId), (n.get(requestIndexOf(r.requestId)) ?? 0) + 1);
      return n;
    };
    const kills: { committed: Set<number>; sends: Map<number, number> }[] = [];
    // Chunk leases each killed agent held: one, or two when it was already feeding the next chunk.
    let leasesAtKills = 0;
    let committedBefore = 0;
    for (let k = 0; k < KILLS; k++) {
      const agentId = `doomed-${k}`;
      const agent = children.agent({ ...ctx.env, VLLM_URL: sim.url }, agentId);
      // Mid-chunk: this agent holds a chunk it has committed part of, and has made progress since the last kill.
      await eventually(`agent ${agentId} to be mid-chunk`, async () => {
        const chunks = await chunkRows(ctx, batchId);
        const midChunk = chunks.some((c) => c.leased_by === agentId && c.committed > 0 && c.committed < c.request_count);
        return midChunk && (await committedCount(ctx, batchId)) >= committedBefore + 6;
      });
      agent.signal("SIGKILL");
      expect(await agent.exited).toBeNull();
      // The dead agent commits nothing more: what is committed now is what it left behind.
      kills.push({ committed: await committedIndexes(ctx, batchId), sends: sendsOf() });
      const held = (await chunkRows(ctx, batchId)).filter((c) => c.status === "leased" && c.leased_by === agentId).length;
      expect(held === 1 || held === 2, `${agentId} held ${held} leases`).toBe(true);
      leasesAtKills += held;
      committedBefore = kills[k]!.committed.size;
      expect((await batchRow(ctx, batchId)).status).toBe("in_progress");
    }

    children.agent({ ...ctx.env, VLLM_URL: sim.url }, "survivor");
    const batch = await eventually("the batch to complete", async () => {
      const b = await batchRow(ctx, batchId);
      return b.status === "completed" ? b : undefined;
    });

    // Every custom_id exactly once, in input order, each answered for its own request.
    const { output, errors } = await readResults(ctx, batch);
    expect(errors).toEqual([]);
    expect(output.map((l) => l.custom_id)).toEqual(requests.map((r) => r.custom_id));
    expect(output.map((l) => requestIndexOf(l.response?.request_id))).toEqual(requests.map((_, i) => i));
    expect(output.every((l) => l.response?.status_code === 200)).toBe(true);
    await segmentsGone(ctx, batchId);

    // A request committed at a kill is never sent again afterwards.
    const finalSends = sendsOf();
    for (const [k, kill] of kills.entries()) {
      for (const r of kill.committed) expect(finalSends.get(r), `request ${r}, committed at kill ${k}`).toBe(kill.sends.get(r));
    }
    // Every request reached the engine; one reached it more than once only if it was in
    // flight or finished-but-uncommitted at some kill.
    const resent = [...finalSends].filter(([, n]) => n > 1);
    expect([...finalSends.keys()].sort((a, b) => a - b)).toEqual(requests.map((_, i) => i));
    for (const [r, n] of resent) {
      const uncommittedAtKills = kills.filter((kill) => kill.sends.has(r) && !kill.committed.has(r)).length;
      expect(n - 1, `request ${r}`).toBeLessThanOrEqual(uncommittedAtKills);
    }
    // What a kill costs: what the killed agent had sent but not committed, all of which had to run again.
    const perKill = kills.map((kill, k) => {
      const before = kills[k - 1]?.sends ?? new Map<number, number>();
      return [...kill.sends].filter(([r, n]) => n > (before.get(r) ?? 0) && !kill.committed.has(r)).length;
    });
    const duplicates = [...finalSends.values()].reduce((a, n) => a + n - 1, 0);
    expect(perKill.reduce((a, n) => a + n, 0)).toBe(duplicates);
    console.log(`[sigkill cost] ${KILLS} kills, ${duplicates} requests re-sent in all, per kill: ${perKill.join(", ")} (concurrency 4, SEGMENT_MAX_LINES 4)`);
    // The rescued chunks were claimed again; who finished each is recorded.
    const chunks = await chunkRows(ctx, batchId);
    expect(chunks.every((c) => c.status === "done" && c.committed === c.request_count && c.done_by !== null)).toBe(true);
    // Each lease a kill left behind lapsed and counts as one crashed claim of its chunk.
    expect(chunks.reduce((n, c) => n + c.failures, 0)).toBe(leasesAtKills);
  });
});

import { describe, expect, it } from "vitest";
import { faultSuite } from "../support/fault-suite.js";
import { eventually } from "../support/processes.js";
import { batchRow, chunkRows, readResults, requestIndexOf } from "../support/results.js";
import { chatLine, seedBatch } from "../support/seed.js";

const TOTAL = 24;
/** Each wait names itself when it times out, well inside the test's own limit. */
const STEP_MS = 30_000;

describe("fault: an agent paused past its lease", () => {
  const suite = faultSuite();
  const { children } = suite;

  it("is fenced out when it wakes: its late writes are rejected and nothing is written twice", async () => {
    const ctx = await suite.context({ CHUNK_SIZE: "24", SEGMENT_MAX_LINES: "2", SEGMENT_MAX_MS: "300", LEASE_SECONDS: "3", AGENT_POLL_MS: "50", API_POLL_MS: "50", AGENT_CONCURRENCY: "2", AGENT_MAX_CONCURRENCY: "2" });
    // Slow enough that the sleeper is still mid-chunk, with requests left, whenever it is paused.
    const sim = await suite.sim({ models: ["barge-sim-1"], decodeTokensPerSec: 40 });
    const requests = Array.from({ length: TOTAL }, (_, i) => chatLine(`p-${i}`, `pause ${i}`));
    const { batchId } = await seedBatch(ctx, requests);

    const sleeper = children.agent({ ...ctx.env, VLLM_URL: sim.url }, "sleeper");
    const [held] = await eventually("the sleeper to commit two segments", async () => {
      const chunks = await chunkRows(ctx, batchId);
      const c = chunks[0]!;
      return c.leased_by === "sleeper" && c.next_seq >= 2 && c.status !== "done" ? chunks : undefined;
    }, STEP_MS);
    sleeper.signal("SIGSTOP");
    // Had the sleeper finished the chunk before the pause, there would be no lease to rescue.
    expect(held!.committed).toBeLessThan(TOTAL - 4);

    // Another agent rescues the lapsed lease and takes the chunk over with a new fence.
    children.agent({ ...ctx.env, VLLM_URL: sim.url }, "rescuer");
    const taken = await eventually("the rescuer to take the chunk over", async () => {
      const [c] = await chunkRows(ctx, batchId);
      return c!.leased_by === "rescuer" && c!.committed > held!.committed ? c : undefined;
    }, STEP_MS);
    expect(taken.fence).toBe(held!.fence + 1);
    expect(taken.failures).toBe(1);

    // The sleeper wakes holding a lease that is no longer its own.
    sleeper.signal("SIGCONT");
    const lost = await eventually("the sleeper to notice it lost the chunk", async () =>
      sleeper.logs().find((l) => l.msg === "chunk run ended" && l.outcome === "lost" && l.fence === held!.fence),
    STEP_MS);
    expect(lost.batch).toBe(batchId);
    const batch = await eventually("the batch to complete", async () => {
      const b = await batchRow(ctx, batchId);
      return b.status === "completed" ? b : undefined;
    }, STEP_MS);

    const { output, errors } = await readResults(ctx, batch);
    expect(errors).toEqual([]);
    expect(output.map((l) => l.custom_id)).toEqual(requests.map((r) => r.custom_id));
    expect(output.map((l) => requestIndexOf(l.response?.request_id))).toEqual(requests.map((_, i) => i));
    const [done] = await chunkRows(ctx, batchId);
    expect([done!.status, done!.done_by, done!.committed, done!.fence]).toEqual(["done", "rescuer", TOTAL, held!.fence + 1]);
    // The manifest counts exactly what the checkpoints committed, once.
    expect((await ctx.db.selectFrom("chunks").select("completed").where("batch_id", "=", batchId).executeTakeFirstOrThrow()).completed).toBe(TOTAL);
    // Nothing the sleeper committed before its pause was sent again by the rescuer.
    for (let i = 0; i < held!.committed; i++) {
      expect(sim.requests().filter((r) => r.requestId === `${batchId}:${i}`), `request ${i}`).toHaveLength(1);
    }
  }, 150_000);
});

import { describe, expect, it } from "vitest";
import { batchProgress } from "@barge/core";
import { faultSuite } from "../support/fault-suite.js";
import { eventually } from "../support/processes.js";
import { batchRow, chunkRows, parseJsonl, readResults, requestIndexOf } from "../support/results.js";
import { chatLine, readObject, seedBatch, segmentsGone } from "../support/seed.js";

const TOTAL = 40;
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

describe("fault: cancel and expiry mid-run, with an agent process", () => {
  const suite = faultSuite();
  const { children } = suite;

  /** A batch of two 20-request chunks with permanent 400s at `failing`, one agent process running chunk 0. */
  async function running(failing: number[]) {
    const ctx = await suite.context({ CHUNK_SIZE: "20", SEGMENT_MAX_LINES: "4", SEGMENT_MAX_MS: "300", LEASE_SECONDS: "2", AGENT_POLL_MS: "50", API_POLL_MS: "50", AGENT_CONCURRENCY: "2", AGENT_MAX_CONCURRENCY: "2" });
    // 200-1200 ms a request: chunk 0 takes seconds, so the stop lands in its middle, and both
    // request slots are busy whenever the runner looks (commits never hold dispatch back).
    const sim = await suite.sim({ models: ["barge-sim-1"], decodeTokensPerSec: 40 });
    const api = await suite.api(ctx);
    const requests = Array.from({ length: TOTAL }, (_, i) => chatLine(`c-${i}`, failing.includes(i) ? `__sim_fail_400__ ${i}` : `stop me ${i}`));
    const { batchId } = await seedBatch(ctx, requests);
    children.agent({ ...ctx.env, VLLM_URL: sim.url }, "worker");
    await eventually("chunk 0 to be part-way", async () => {
      const [c0] = await chunkRows(ctx, batchId);
      return c0!.leased_by === "worker" && c0!.committed >= 4 && c0!.committed < 16;
    });
    return { ctx, sim, api, requests, batchId };
  }

  it("cancel: in-flight requests are aborted, the committed prefix is stitched, the rest never runs", async () => {
    const { ctx, sim, api, batchId } = await running([1, 25]);
    const res = await fetch(`${api.url}/v1/batches/${batchId}/cancel`, { method: "POST" });
    expect(((await res.json()) as { status: string }).status).toBe("cancelling");
    const batch = await eventually("the batch to be cancelled", async () => {
      const b = await batchRow(ctx, batchId);
      return b.status === "cancelled" ? b : undefined;
    });

    const [c0, c1] = await chunkRows(ctx, batchId);
    expect([c0!.status, c1!.status, c1!.committed, c1!.attempts]).toEqual(["cancelled", "cancelled", 0, 0]);
    const kept = c0!.committed;
    expect(kept).toBeGreaterThanOrEqual(4);
    expect(kept).toBeLessThan(20);
    const { output, errors } = await readResults(ctx, batch);
    expect(output.map((l) => l.custom_id)).toEqual(range(0, kept).filter((i) => i !== 1).map((i) => `c-${i}`));
    expect(errors.map((l) => [l.custom_id, l.response?.status_code])).toEqual([["c-1", 400]]);
    expect((await batchProgress(ctx.db, [batchId])).get(batchId)).toMatchObject({ completed: kept - 1, failed: 1 });
    // Requests in flight at the cancel were cut, not answered; chunk 1 never reached the engine.
    const log = sim.requests();
    expect(log.some((r) => r.status === null && r.finishedAt !== null)).toBe(true);
    expect(log.every((r) => requestIndexOf(r.requestId) < 20)).toBe(true);
    await segmentsGone(ctx, batchId);
  });

  it("expiry: committed results are kept and every unfinished request gets a batch_expired line, in input order", async () => {
    const { ctx, sim, api, batchId } = await running([1, 25]);
    await ctx.db.updateTable("batches").set({ expires_at: new Date(Date.now() - 1000) }).where("id", "=", batchId).execute();
    const batch = await eventually("the batch to expire", async () => {
      const b = await batchRow(ctx, batchId);
      return b.status === "expired" ? b : undefined;
    });
    expect(batch.expired_at).not.toBeNull();
    expect([batch.completed_at, batch.cancelled_at]).toEqual([null, null]);

    // What chunk 0's run committed before it stopped; everything after it expired.
    const { output, errors } = await readResults(ctx, batch);
    const expired = errors.filter((l) => l.error?.code === "batch_expired");
    const ran = TOTAL - expired.length;
    expect(ran).toBeGreaterThanOrEqual(4);
    expect(ran).toBeLessThan(20);
    expect(output.map((l) => l.custom_id)).toEqual(range(0, ran).filter((i) => i !== 1).map((i) => `c-${i}`));
    // Errors merge in input order: the 400 among the committed, then every unfinished request, 25 included.
    expect(errors.map((l) => l.custom_id)).toEqual(["c-1", ...range(ran, TOTAL).map((i) => `c-${i}`)]);
    expect(errors[0]!.response?.status_code).toBe(400);
    for (const line of expired) {
      expect(Object.keys(line)).toEqual(["id", "custom_id", "response", "error"]);
      expect(line.id).toMatch(/^batch_req_/);
      expect(line.response).toBeNull();
      expect(line.error).toEqual({ code: "batch_expired", message: "The batch's completion window (24h) expired before this request was processed." });
    }
    // Expired requests count as failed, in the checkpoints, the manifest and the API alike.
    const counts = { total: TOTAL, completed: ran - 1, failed: TOTAL - ran + 1 };
    const got = (await (await fetch(`${api.url}/v1/batches/${batchId}`)).json()) as { status: string; request_counts: unknown };
    expect([got.status, got.request_counts]).toEqual(["expired", counts]);
    const manifest = JSON.parse(await readObject(ctx, batch.output_key!.replace(/output\.jsonl$/, "manifest.json"))) as Record<string, unknown>;
    expect(manifest).toMatchObject({ status: "expired", request_counts: counts });
    expect(log400s(sim.requests())).toEqual([1]);

    // The expired requests are queryable failures, and a retry re-runs exactly the failed ones.
    const listed = (await (await fetch(`${api.url}/v1/batches/${batchId}/errors?limit=100`)).json()) as { data: { custom_id: string; code: string; attempts: number; status_code: number | null }[] };
    expect(listed.data.map((e) => [e.custom_id, e.code, e.attempts, e.status_code])).toEqual([
      ["c-1", "engine_error", 1, 400],
      ...range(ran, TOTAL).map((i) => [`c-${i}`, "batch_expired", 0, null]),
    ]);
    const retry = (await (await fetch(`${api.url}/v1/batches/${batchId}/retry`, { method: "POST" })).json()) as { retry_of: string; input_file_id: string };
    expect(retry.retry_of).toBe(batchId);
    const file = await ctx.db.selectFrom("files").select("s3_key").where("id", "=", retry.input_file_id).executeTakeFirstOrThrow();
    expect(parseJsonl<{ custom_id: string }>(await readObject(ctx, file.s3_key)).map((l) => l.custom_id)).toEqual(["c-1", ...range(ran, TOTAL).map((i) => `c-${i}`)]);
    await segmentsGone(ctx, batchId);
  });
});

/** The request indexes the engine answered 400. */
function log400s(log: readonly { requestId: string | null; status: number | null }[]): number[] {
  return log.filter((r) => r.status === 400).map((r) => requestIndexOf(r.requestId));
}

import { describe, expect, it } from "vitest";
import { claimBatchWork, claimChunk, keys } from "@barge/core";
import { startChunk, createEngineClient, finalizeBatch } from "@barge/agent/testing";
import type { EngineSim } from "@barge/engine-sim";
import { testLog, type TestContext } from "../support/context.js";
import { crashingS3 } from "../support/crashing-s3.js";
import { faultSuite } from "../support/fault-suite.js";
import { eventually } from "../support/processes.js";
import { batchRow, readResults } from "../support/results.js";
import { chatLine, listKeys, readObject, seedBatch } from "../support/seed.js";

const TOTAL = 20;

describe("fault: a finalizer dies", () => {
  const suite = faultSuite();
  const { children } = suite;

  /** A batch whose chunks all ran (by hand, so no agent finalizes it): it is left `finalizing`. */
  async function ranBatch(): Promise<{ ctx: TestContext; sim: EngineSim; batchId: string; tenant: string; requests: ReturnType<typeof chatLine>[] }> {
    const ctx = await suite.context({ CHUNK_SIZE: "10", SEGMENT_MAX_LINES: "3", LEASE_SECONDS: "2", AGENT_POLL_MS: "50", API_POLL_MS: "50", AGENT_CONCURRENCY: "2" });
    const sim = await suite.sim({ models: ["barge-sim-1"] });
    const engine = createEngineClient({ baseUrl: sim.url, connections: 2, timeoutMs: 10_000, maxAttempts: 1 });
    suite.cleanup(() => engine.close());
    const requests = Array.from({ length: TOTAL }, (_, i) => chatLine(`z-${i}`, `finalize ${i}`));
    const { batchId, tenant } = await seedBatch(ctx, requests);
    for (;;) {
      const chunk = await claimChunk(ctx.db, { agentId: "by-hand", models: ["barge-sim-1"], leaseSeconds: 30 });
      if (!chunk) break;
      expect(await startChunk({ db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, engine, log: testLog, config: ctx.config }, chunk).done).toBe("completed");
    }
    expect((await batchRow(ctx, batchId)).status).toBe("finalizing");
    return { ctx, sim, batchId, tenant, requests };
  }

  /** Claims the batch as a finalizer and runs it with an S3 client that "dies" before `command`. */
  async function finalizeUntil(ctx: TestContext, batchId: string, command: string) {
    const claimed = (await claimBatchWork(ctx.db, { workerId: "dying-finalizer", kinds: ["finalizing"], leaseSeconds: 2, batchId }))!;
    const s3 = crashingS3(ctx.config, command);
    suite.cleanup(async () => s3.destroy());
    const deps = { db: ctx.db, s3, bucket: ctx.bucket, log: testLog, leaseSeconds: 2, segmentMaxLines: 3 };
    await expect(finalizeBatch(deps, claimed)).rejects.toThrow(`simulated crash before ${command}`);
    return claimed;
  }

  it("mid-stitch: another agent process takes the batch over once the lease lapses and publishes it exactly once", async () => {
    const { ctx, sim, batchId, tenant, requests } = await ranBatch();
    // The last chunk uploaded the whole (tiny) output as the batch's one part; without that upload
    // the finalizer stitches, which is what this test crashes.
    await ctx.db.updateTable("batches").set({ output_upload_id: null }).where("id", "=", batchId).execute();
    const dead = await finalizeUntil(ctx, batchId, "CompleteMultipartUploadCommand");
    const stuck = await batchRow(ctx, batchId);
    expect(stuck.status).toBe("finalizing");
    expect(stuck.worker_id).toBe("dying-finalizer");
    expect(stuck.stitch_state?.output).toEqual(expect.any(String));

    children.agent({ ...ctx.env, VLLM_URL: sim.url }, "successor");
    const batch = await eventually("the batch to complete", async () => {
      const b = await batchRow(ctx, batchId);
      return b.status === "completed" ? b : undefined;
    });
    expect(batch.worker_fence).toBe(dead.worker_fence + 1);
    const { output, errors } = await readResults(ctx, batch);
    expect(errors).toEqual([]);
    expect(output.map((l) => l.custom_id)).toEqual(requests.map((r) => r.custom_id));
    expect(JSON.parse(await readObject(ctx, keys.manifest(tenant, batchId)))).toMatchObject({ status: "completed", output: { lines: TOTAL } });
    await eventually("the segments to be deleted", async () => (await listKeys(ctx, keys.segmentsPrefix(batchId))).length === 0);
  });

  it("after publishing: the janitor on any agent deletes the segments it left behind", async () => {
    const { ctx, sim, batchId, requests } = await ranBatch();
    await finalizeUntil(ctx, batchId, "ListObjectsV2Command");
    const published = await batchRow(ctx, batchId);
    expect(published.status).toBe("completed");
    // The crash left every segment, row and object.
    const rows = await ctx.db.selectFrom("segments").select("s3_key").where("batch_id", "=", batchId).execute();
    expect(rows.length).toBeGreaterThanOrEqual(8);
    expect((await listKeys(ctx, keys.segmentsPrefix(batchId))).sort()).toEqual(rows.map((r) => r.s3_key).sort());

    children.agent({ ...ctx.env, VLLM_URL: sim.url }, "janitor");
    await eventually("the leftover segments to be deleted", async () => {
      const left = await ctx.db.selectFrom("segments").select("s3_key").where("batch_id", "=", batchId).execute();
      return left.length === 0 && (await listKeys(ctx, keys.segmentsPrefix(batchId))).length === 0;
    });
    // The published result is untouched.
    const { output } = await readResults(ctx, await batchRow(ctx, batchId));
    expect(output.map((l) => l.custom_id)).toEqual(requests.map((r) => r.custom_id));
  });
});

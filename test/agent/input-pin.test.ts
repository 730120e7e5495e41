import { describe, expect, it } from "vitest";
import { claimBatchWork, expireBatches, headObject, keys, newId, putObject, validateBatch } from "@barge/core";
import { finalizeBatch } from "@barge/agent/testing";
import { testLog } from "../support/context.js";
import { batchRow, chunkRows } from "../support/results.js";
import { chatLine, insertBatch, seedBatch, validatorDeps, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

const TOTAL = 6;

describe("agent: the input is pinned to the ETag it was validated with", () => {
  const suite = suiteResources();

  it("an input object replaced after validation fails the batch as input_changed, and no request reaches the engine", async () => {
    const ctx = await suite.context({ CHUNK_SIZE: "2", SEGMENT_MAX_LINES: "1", LEASE_SECONDS: "2", AGENT_POLL_MS: "50", API_POLL_MS: "50", AGENT_CONCURRENCY: "2" });
    const sim = await suite.sim({ models: ["barge-sim-1"], decodeTokensPerSec: 1000 });
    const lines = Array.from({ length: TOTAL }, (_, i) => chatLine(`p-${i}`, `pinned ${i}`));
    const { batchId, fileId, inputKey } = await seedBatch(ctx, lines);
    const validated = await headObject(ctx, inputKey);
    const before = await batchRow(ctx, batchId);
    expect([before.status, before.input_etag]).toEqual(["in_progress", validated!.etag]);

    // Same size, other requests: only the ETag tells the objects apart. The agent starts after
    // the overwrite, so every chunk's first read meets the new object.
    const swapped = lines.map((l) => JSON.stringify({ ...l, custom_id: l.custom_id.replace("p-", "q-") })).join("\n") + "\n";
    await putObject(ctx, inputKey, swapped);
    expect((await headObject(ctx, inputKey))!.etag).not.toBe(validated!.etag);

    await suite.agent(ctx, { engineUrl: sim.url, agentId: "pin-agent" }).start();
    const batch = await waitFor("the batch to fail", async () => {
      const b = await batchRow(ctx, batchId);
      return b.status === "failed" ? b : undefined;
    });
    expect(batch.errors).toEqual([
      {
        code: "input_changed",
        message: `The content of input file '${fileId}' changed after it was stored, so none of its requests were run.`,
        line: null,
        param: "input_file_id",
      },
    ]);
    expect(batch.failed_at).not.toBeNull();
    expect([batch.output_file_id, batch.error_file_id]).toEqual([null, null]);
    // Every chunk was closed in the same move, so none is claimed again.
    const chunks = await chunkRows(ctx, batchId);
    expect(chunks.map((c) => [c.status, c.committed])).toEqual([
      ["cancelled", 0],
      ["cancelled", 0],
      ["cancelled", 0],
    ]);
    expect(await ctx.db.selectFrom("segments").select("seq").where("batch_id", "=", batchId).execute()).toEqual([]);
    expect(sim.requests()).toHaveLength(0);
  });

  it("the validator fails a batch whose file's object is no longer the one the upload wrote", async () => {
    const ctx = await suite.context();
    const fileId = newId("file-");
    const key = keys.input("default", fileId);
    const text = JSON.stringify(chatLine("v-0", "validated")) + "\n";
    await putObject(ctx, key, text);
    const written = (await headObject(ctx, key))!.etag;
    await ctx.db.insertInto("files").values({ id: fileId, tenant: "default", purpose: "batch", filename: "in.jsonl", bytes: text.length, status: "processed", s3_key: key, etag: written }).execute();
    await putObject(ctx, key, text.replace("v-0", "w-0"));
    const batchId = newId("batch_");
    await insertBatch(ctx.db, { id: batchId, input_file_id: fileId });
    const claimed = await claimBatchWork(ctx.db, { workerId: "pin-test", kinds: ["validating"], leaseSeconds: 30, batchId });
    expect(await validateBatch(validatorDeps(ctx), claimed!)).toBe("failed");
    const batch = await batchRow(ctx, batchId);
    expect([batch.status, batch.input_etag, batch.errors?.map((e) => e.code)]).toEqual(["failed", null, ["input_changed"]]);
    expect(await ctx.db.selectFrom("chunks").select("idx").where("batch_id", "=", batchId).execute()).toEqual([]);
  });

  it("the finalizer of an expired batch reads the input pinned too: a replaced object fails the batch as input_changed, with no batch_expired lines", async () => {
    const ctx = await suite.context({ CHUNK_SIZE: "2" });
    const lines = Array.from({ length: 4 }, (_, i) => chatLine(`x-${i}`, `expiring ${i}`));
    const { batchId, fileId, inputKey } = await seedBatch(ctx, lines);
    await ctx.db.updateTable("batches").set({ expires_at: new Date(Date.now() - 1000) }).where("id", "=", batchId).execute();
    expect(await expireBatches(ctx.db)).toEqual([batchId]);
    const swapped = lines.map((l) => JSON.stringify({ ...l, custom_id: l.custom_id.replace("x-", "y-") })).join("\n") + "\n";
    await putObject(ctx, inputKey, swapped);

    const claimed = (await claimBatchWork(ctx.db, { workerId: "pin-finalizer", kinds: ["finalizing"], leaseSeconds: 30, batchId }))!;
    expect(claimed.expired_at).not.toBeNull();
    const deps = { db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, log: testLog, leaseSeconds: 30, segmentMaxLines: 1 };
    expect(await finalizeBatch(deps, claimed)).toBe("failed");
    const batch = await batchRow(ctx, batchId);
    expect([batch.status, batch.failed_at !== null, batch.output_file_id, batch.error_file_id]).toEqual(["failed", true, null, null]);
    expect(batch.errors).toEqual([
      {
        code: "input_changed",
        message: `The content of input file '${fileId}' changed after it was stored, so none of its requests were run.`,
        line: null,
        param: "input_file_id",
      },
    ]);
    expect((await chunkRows(ctx, batchId)).map((c) => [c.status, c.committed])).toEqual([
      ["cancelled", 0],
      ["cancelled", 0],
    ]);
    expect(await ctx.db.selectFrom("segments").select("seq").where("batch_id", "=", batchId).execute()).toEqual([]);
  });
});

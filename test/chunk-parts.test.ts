import { afterEach, describe, expect, it } from "vitest";
import type { S3Client } from "@aws-sdk/client-s3";
import { claimBatchWork, claimChunk, createS3Client, keys, MIN_PART_BYTES, s3Settings, type Config } from "@barge/core";
import { uploadChunkPart } from "@barge/agent/chunk-part";
import { startChunk } from "@barge/agent/chunk-runner";
import { createEngineClient } from "@barge/agent/engine-client";
import { finalizeBatch } from "@barge/agent/finalizer";
import { createEngineSim } from "@barge/engine-sim";
import { createTestContext, testLog, type TestContext } from "./support/context.js";
import { crashingS3 } from "./support/crashing-s3.js";
import { eventually } from "./support/processes.js";
import { batchRow, parseJsonl } from "./support/results.js";
import { chatLine, readObject, seedBatch } from "./support/seed.js";

interface Call {
  name: string;
  input: Record<string, unknown>;
}

/** An S3 client on the suite's server that records the commands it sends, with their inputs. */
function countingS3(config: Config): { s3: S3Client; calls: Call[]; count: (name: string) => number } {
  const s3 = createS3Client(s3Settings(config));
  const calls: Call[] = [];
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      calls.push({ name: context.commandName ?? "", input: args.input as Record<string, unknown> });
      return next(args);
    },
    { step: "initialize", name: "barge-test-count" },
  );
  return { s3, calls, count: (name: string) => calls.filter((c) => c.name === name).length };
}

// ~65 KB result lines (4 choices of 4,000 tokens), so 100-request chunks carry > 5 MiB each.
const BIG = { max_tokens: 4000, n: 4 };

describe("chunk parts: the output is uploaded while the batch runs, finalizing only completes it", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** Runs every chunk of a batch by hand (each completion uploads its part) and waits for the parts. */
  async function ranBatch(opts: { total: number; chunkSize: number; extra?: Record<string, unknown> }) {
    const ctx = await createTestContext({ CHUNK_SIZE: String(opts.chunkSize), SEGMENT_MAX_LINES: "40", AGENT_CONCURRENCY: "8" });
    cleanups.push(() => ctx.close());
    const sim = await createEngineSim({ models: ["barge-sim-1"] });
    cleanups.push(() => sim.close());
    const engine = createEngineClient({ baseUrl: sim.url, connections: 8, timeoutMs: 30_000, maxAttempts: 1 });
    cleanups.push(async () => engine.close());
    const requests = Array.from({ length: opts.total }, (_, i) => chatLine(`p-${i}`, `part ${i}`, opts.extra ?? {}));
    const { batchId, tenant } = await seedBatch(ctx, requests);
    for (;;) {
      const chunk = await claimChunk(ctx.db, { agentId: "by-hand", models: ["barge-sim-1"], leaseSeconds: 60 });
      if (!chunk) break;
      expect(await startChunk({ db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, engine, log: testLog, config: ctx.config }, chunk).done).toBe("completed");
    }
    expect((await batchRow(ctx, batchId)).status).toBe("finalizing");
    const segments = await ctx.db
      .selectFrom("segments")
      .select(["chunk_idx", "s3_key", "bytes"])
      .where("batch_id", "=", batchId)
      .where("kind", "=", "output")
      .orderBy("chunk_idx")
      .orderBy("seq")
      .execute();
    // The segments are deleted once published: what the output must equal is read now.
    const texts: string[] = [];
    for (const s of segments) texts.push(await readObject(ctx, s.s3_key));
    const chunkBytes = new Map<number, number>();
    for (const s of segments) chunkBytes.set(s.chunk_idx, (chunkBytes.get(s.chunk_idx) ?? 0) + s.bytes);
    return { ctx, batchId, tenant, requests, segments, expected: texts.join(""), chunkBytes };
  }

  async function partRows(ctx: TestContext, batchId: string) {
    return ctx.db.selectFrom("chunk_parts").selectAll().where("batch_id", "=", batchId).orderBy("chunk_idx").execute();
  }

  /** Claims the batch as a finalizer with a counting S3 client and finalizes it. */
  async function finalize(ctx: TestContext, batchId: string) {
    const counting = countingS3(ctx.config);
    cleanups.push(async () => counting.s3.destroy());
    // A crashed finalizer's batch lease has to lapse first.
    const claimed = await eventually("the batch to be claimable", () => claimBatchWork(ctx.db, { workerId: "finalizer", kinds: ["finalizing"], leaseSeconds: 30, batchId }));
    expect(await finalizeBatch({ db: ctx.db, s3: counting.s3, bucket: ctx.bucket, log: testLog, leaseSeconds: 30, segmentMaxLines: 40 }, claimed)).toBe("completed");
    return counting;
  }

  async function expectOutput(ctx: TestContext, batchId: string, tenant: string, expected: string, requests: { custom_id: string }[]) {
    const batch = await batchRow(ctx, batchId);
    expect(batch.status).toBe("completed");
    expect(batch.output_key).toBe(keys.output(tenant, batchId));
    const text = await readObject(ctx, batch.output_key!);
    expect(text.length).toBe(expected.length);
    expect(text === expected).toBe(true);
    expect(parseJsonl(text).map((l) => l.custom_id)).toEqual(requests.map((r) => r.custom_id));
    // Published: the records describe an upload that no longer exists.
    expect(await partRows(ctx, batchId)).toEqual([]);
  }

  it("chunk outputs >= 5 MiB: each completed chunk uploaded its part; the finalizer only completes the upload", async () => {
    const { ctx, batchId, tenant, requests, expected, chunkBytes } = await ranBatch({ total: 250, chunkSize: 100, extra: BIG });
    expect([...chunkBytes.keys()]).toEqual([0, 1, 2]);
    expect(chunkBytes.get(0)!).toBeGreaterThanOrEqual(MIN_PART_BYTES);
    expect(chunkBytes.get(1)!).toBeGreaterThanOrEqual(MIN_PART_BYTES);
    // Chunks 0 and 1 uploaded in the background; the last one before the batch was handed on.
    const parts = await eventually("every chunk part to be recorded", async () => {
      const rows = await partRows(ctx, batchId);
      return rows.length === 3 ? rows : undefined;
    });
    const uploadId = (await batchRow(ctx, batchId)).output_upload_id;
    expect(uploadId).toEqual(expect.any(String));
    expect(parts.map((p) => [p.chunk_idx, p.part_number, p.bytes, p.upload_id])).toEqual([0, 1, 2].map((i) => [i, i + 1, chunkBytes.get(i), uploadId]));
    for (const p of parts) expect(p.etag).toMatch(/^"[0-9a-f]{32}"$/);

    const { calls, count } = await finalize(ctx, batchId);
    expect(count("UploadPartCommand")).toBe(0);
    expect(count("UploadPartCopyCommand")).toBe(0);
    expect(count("GetObjectCommand")).toBe(0);
    expect(count("CreateMultipartUploadCommand")).toBe(0);
    const completes = calls.filter((c) => c.name === "CompleteMultipartUploadCommand");
    expect(completes.map((c) => [c.input.Key, c.input.UploadId, c.input.MultipartUpload])).toEqual([
      [keys.output(tenant, batchId), uploadId, { Parts: parts.map((p) => ({ PartNumber: p.part_number, ETag: p.etag })) }],
    ]);
    await expectOutput(ctx, batchId, tenant, expected, requests);
    const manifest = JSON.parse(await readObject(ctx, keys.manifest(tenant, batchId)));
    expect(manifest.output).toMatchObject({ lines: 250, bytes: expected.length });
  });

  it("small chunk outputs: no part is uploaded and the output is stitched from the segments as before", async () => {
    const { ctx, batchId, tenant, requests, segments, expected } = await ranBatch({ total: 30, chunkSize: 10 });
    expect((await batchRow(ctx, batchId)).output_upload_id).toBeNull();
    expect(await partRows(ctx, batchId)).toEqual([]);
    const { count } = await finalize(ctx, batchId);
    // One concatenated part (the whole output is far below 5 MiB), read from every segment.
    expect(count("CreateMultipartUploadCommand")).toBe(1);
    expect(count("UploadPartCommand")).toBe(1);
    expect(count("GetObjectCommand")).toBe(segments.length);
    await expectOutput(ctx, batchId, tenant, expected, requests);
  });

  it("a stale part (its chunk's segments changed since) is rebuilt at finalize; the valid ones are kept", async () => {
    const { ctx, batchId, tenant, requests, segments, expected } = await ranBatch({ total: 250, chunkSize: 100, extra: BIG });
    await eventually("every chunk part to be recorded", async () => (await partRows(ctx, batchId)).length === 3);
    await ctx.db.updateTable("chunk_parts").set({ source_digest: "built-from-other-segments" }).where("batch_id", "=", batchId).where("chunk_idx", "=", 1).execute();
    const { calls, count } = await finalize(ctx, batchId);
    expect(calls.filter((c) => c.name === "UploadPartCommand").map((c) => c.input.PartNumber)).toEqual([2]);
    expect(count("GetObjectCommand")).toBe(segments.filter((s) => s.chunk_idx === 1).length);
    expect(count("CompleteMultipartUploadCommand")).toBe(1);
    await expectOutput(ctx, batchId, tenant, expected, requests);
  });

  it("mostly stale parts: the output upload is aborted and the segments stitched the old way", async () => {
    const { ctx, batchId, tenant, requests, segments, expected } = await ranBatch({ total: 250, chunkSize: 100, extra: BIG });
    await eventually("every chunk part to be recorded", async () => (await partRows(ctx, batchId)).length === 3);
    const uploadId = (await batchRow(ctx, batchId)).output_upload_id;
    await ctx.db.updateTable("chunk_parts").set({ upload_id: "an-upload-that-was-replaced" }).where("batch_id", "=", batchId).where("chunk_idx", "in", [0, 2]).execute();
    const { calls, count } = await finalize(ctx, batchId);
    expect(calls.filter((c) => c.name === "AbortMultipartUploadCommand").map((c) => c.input.UploadId)).toContain(uploadId);
    // The stitch: a new upload, every segment read once.
    expect(count("CreateMultipartUploadCommand")).toBe(1);
    expect(count("GetObjectCommand")).toBe(segments.length);
    await expectOutput(ctx, batchId, tenant, expected, requests);
  });

  it("a crash between a part's upload and its record: the finalizer rebuilds that one part", async () => {
    const { ctx, batchId, tenant, requests, expected } = await ranBatch({ total: 250, chunkSize: 100, extra: BIG });
    await eventually("every chunk part to be recorded", async () => (await partRows(ctx, batchId)).length === 3);
    // The part is in the upload, its record never written: exactly what a crash right after UploadPart leaves.
    await ctx.db.deleteFrom("chunk_parts").where("batch_id", "=", batchId).where("chunk_idx", "=", 0).execute();
    const { calls } = await finalize(ctx, batchId);
    expect(calls.filter((c) => c.name === "UploadPartCommand").map((c) => c.input.PartNumber)).toEqual([1]);
    await expectOutput(ctx, batchId, tenant, expected, requests);
  });

  it("a finalizer that dies before completing the upload: the next one completes the same parts", async () => {
    const { ctx, batchId, tenant, requests, expected } = await ranBatch({ total: 250, chunkSize: 100, extra: BIG });
    await eventually("every chunk part to be recorded", async () => (await partRows(ctx, batchId)).length === 3);
    const dying = (await claimBatchWork(ctx.db, { workerId: "dying", kinds: ["finalizing"], leaseSeconds: 1, batchId }))!;
    const s3 = crashingS3(ctx.config, "CompleteMultipartUploadCommand");
    cleanups.push(async () => s3.destroy());
    await expect(finalizeBatch({ db: ctx.db, s3, bucket: ctx.bucket, log: testLog, leaseSeconds: 1, segmentMaxLines: 40 }, dying)).rejects.toThrow(
      "simulated crash before CompleteMultipartUploadCommand",
    );
    // Nothing was given up: the upload and every record are there for the next finalizer.
    expect((await batchRow(ctx, batchId)).status).toBe("finalizing");
    expect(await partRows(ctx, batchId)).toHaveLength(3);
    const { count } = await finalize(ctx, batchId);
    expect([count("CreateMultipartUploadCommand"), count("UploadPartCommand"), count("GetObjectCommand"), count("CompleteMultipartUploadCommand")]).toEqual([0, 0, 0, 1]);
    await expectOutput(ctx, batchId, tenant, expected, requests);
  });

  it("agents racing to open the batch's output upload end up on one upload", async () => {
    const { ctx, batchId, tenant, requests, expected, chunkBytes } = await ranBatch({ total: 250, chunkSize: 100, extra: BIG });
    await eventually("every chunk part to be recorded", async () => (await partRows(ctx, batchId)).length === 3);
    // As if no agent had opened one yet: three completions race to.
    await ctx.db.deleteFrom("chunk_parts").where("batch_id", "=", batchId).execute();
    await ctx.db.updateTable("batches").set({ output_upload_id: null }).where("id", "=", batchId).execute();
    const deps = { db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, log: testLog };
    const outcomes = await Promise.all([0, 1].map((idx) => uploadChunkPart(deps, { batchId, idx })));
    expect(outcomes).toEqual([0, 1].map((i) => ({ uploaded: true, bytes: chunkBytes.get(i) })));
    // The small last chunk joins only now that the upload exists.
    expect(await uploadChunkPart(deps, { batchId, idx: 2 })).toEqual({ uploaded: true, bytes: chunkBytes.get(2) });
    const uploadId = (await batchRow(ctx, batchId)).output_upload_id;
    expect((await partRows(ctx, batchId)).map((p) => [p.chunk_idx, p.upload_id])).toEqual([0, 1, 2].map((i) => [i, uploadId]));
    const { count } = await finalize(ctx, batchId);
    expect(count("UploadPartCommand")).toBe(0);
    await expectOutput(ctx, batchId, tenant, expected, requests);
  });
});

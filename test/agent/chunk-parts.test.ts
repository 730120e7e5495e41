import { describe, expect, it } from "vitest";
import type { S3Client } from "@aws-sdk/client-s3";
import { claimBatchWork, claimChunk, createS3Client, keys, MIN_PART_BYTES, s3Settings, type Config } from "@barge/core";
import { uploadChunkPart, startChunk, createEngineClient, finalizeBatch } from "@barge/agent/testing";
import { testLog, type TestContext } from "../support/context.js";
import { crashingS3 } from "../support/crashing-s3.js";
import { eventually } from "../support/processes.js";
import { batchRow, parseJsonl } from "../support/results.js";
import { chatLine, readObject, seedBatch } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

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
  const suite = suiteResources();

  /** Runs every chunk of a batch by hand (each completion uploads its part) and waits for the parts. */
  async function ranBatch(opts: { total: number; chunkSize: number; extra?: Record<string, unknown> }) {
    const ctx = await suite.context({ CHUNK_SIZE: String(opts.chunkSize), SEGMENT_MAX_LINES: "40", AGENT_CONCURRENCY: "8" });
    const sim = await suite.sim({ models: ["barge-sim-1"] });
    const engine = createEngineClient({ baseUrl: sim.url, connections: 8, timeoutMs: 30_000, maxAttempts: 1 });
    suite.cleanup(async () => engine.close());
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
    return ctx.db.selectFrom("output_parts").selectAll().where("batch_id", "=", batchId).orderBy("first_chunk").execute();
  }

  /** The batch's part records once `n` parts are uploaded and recorded (claims are written before the upload). */
  async function uploadedParts(ctx: TestContext, batchId: string, n: number) {
    return eventually(`${n} output parts to be recorded`, async () => {
      const rows = await partRows(ctx, batchId);
      return rows.length === n && rows.every((r) => r.etag !== null) ? rows : undefined;
    });
  }

  /** Claims the batch as a finalizer with a counting S3 client and finalizes it. */
  async function finalize(ctx: TestContext, batchId: string) {
    const counting = countingS3(ctx.config);
    suite.cleanup(async () => counting.s3.destroy());
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
    const parts = await uploadedParts(ctx, batchId, 3);
    const uploadId = (await batchRow(ctx, batchId)).output_upload_id;
    expect(uploadId).toEqual(expect.any(String));
    expect(parts.map((p) => [p.first_chunk, p.last_chunk, p.part_number, p.bytes, p.upload_id])).toEqual([0, 1, 2].map((i) => [i, i, i + 1, chunkBytes.get(i), uploadId]));
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

  it("small chunk outputs, the whole output below 5 MiB: the last chunk's completion uploads all of it as the one (last) part", async () => {
    const { ctx, batchId, tenant, requests, expected } = await ranBatch({ total: 30, chunkSize: 10 });
    // The run of chunks reaches the batch's last chunk only with it, and that upload is waited for.
    const parts = await partRows(ctx, batchId);
    expect(parts.map((p) => [p.first_chunk, p.last_chunk, p.part_number, p.bytes])).toEqual([[0, 2, 1, expected.length]]);
    expect(parts[0]!.etag).toMatch(/^"[0-9a-f]{32}"$/);
    const { count } = await finalize(ctx, batchId);
    expect([count("CreateMultipartUploadCommand"), count("UploadPartCommand"), count("GetObjectCommand"), count("CompleteMultipartUploadCommand")]).toEqual([0, 0, 0, 1]);
    await expectOutput(ctx, batchId, tenant, expected, requests);
  });

  it("a stale part (its chunk's segments changed since) is rebuilt at finalize; the valid ones are kept", async () => {
    const { ctx, batchId, tenant, requests, segments, expected } = await ranBatch({ total: 250, chunkSize: 100, extra: BIG });
    await uploadedParts(ctx, batchId, 3);
    await ctx.db.updateTable("output_parts").set({ source_digest: "built-from-other-segments" }).where("batch_id", "=", batchId).where("first_chunk", "=", 1).execute();
    const { calls, count } = await finalize(ctx, batchId);
    expect(calls.filter((c) => c.name === "UploadPartCommand").map((c) => c.input.PartNumber)).toEqual([2]);
    expect(count("GetObjectCommand")).toBe(segments.filter((s) => s.chunk_idx === 1).length);
    expect(count("CompleteMultipartUploadCommand")).toBe(1);
    await expectOutput(ctx, batchId, tenant, expected, requests);
  });

  it("mostly stale parts: the output upload is aborted and the segments stitched the old way", async () => {
    const { ctx, batchId, tenant, requests, segments, expected } = await ranBatch({ total: 250, chunkSize: 100, extra: BIG });
    await uploadedParts(ctx, batchId, 3);
    const uploadId = (await batchRow(ctx, batchId)).output_upload_id;
    await ctx.db.updateTable("output_parts").set({ upload_id: "an-upload-that-was-replaced" }).where("batch_id", "=", batchId).where("first_chunk", "in", [0, 2]).execute();
    const { calls, count } = await finalize(ctx, batchId);
    expect(calls.filter((c) => c.name === "AbortMultipartUploadCommand").map((c) => c.input.UploadId)).toContain(uploadId);
    // The stitch: a new upload, every segment read once.
    expect(count("CreateMultipartUploadCommand")).toBe(1);
    expect(count("GetObjectCommand")).toBe(segments.length);
    await expectOutput(ctx, batchId, tenant, expected, requests);
  });

  it("a crash between a part's upload and its record: the finalizer rebuilds that one part", async () => {
    const { ctx, batchId, tenant, requests, expected } = await ranBatch({ total: 250, chunkSize: 100, extra: BIG });
    await uploadedParts(ctx, batchId, 3);
    // The part is in the upload, its claim never completed: exactly what a crash right after UploadPart leaves.
    await ctx.db.updateTable("output_parts").set({ upload_id: null, etag: null, source_digest: null }).where("batch_id", "=", batchId).where("first_chunk", "=", 0).execute();
    const { calls } = await finalize(ctx, batchId);
    expect(calls.filter((c) => c.name === "UploadPartCommand").map((c) => c.input.PartNumber)).toEqual([1]);
    await expectOutput(ctx, batchId, tenant, expected, requests);
  });

  it("a finalizer that dies before completing the upload: the next one completes the same parts", async () => {
    const { ctx, batchId, tenant, requests, expected } = await ranBatch({ total: 250, chunkSize: 100, extra: BIG });
    await uploadedParts(ctx, batchId, 3);
    const dying = (await claimBatchWork(ctx.db, { workerId: "dying", kinds: ["finalizing"], leaseSeconds: 1, batchId }))!;
    const s3 = crashingS3(ctx.config, "CompleteMultipartUploadCommand");
    suite.cleanup(async () => s3.destroy());
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
    await uploadedParts(ctx, batchId, 3);
    // As if no agent had opened one yet, and chunk 1 were still running: chunks 0 and 2 complete at once.
    await ctx.db.deleteFrom("output_parts").where("batch_id", "=", batchId).execute();
    await ctx.db.updateTable("batches").set({ output_upload_id: null }).where("id", "=", batchId).execute();
    await ctx.db.updateTable("chunks").set({ committed: 0 }).where("batch_id", "=", batchId).where("idx", "=", 1).execute();
    const counting = countingS3(ctx.config);
    suite.cleanup(async () => counting.s3.destroy());
    const deps = { db: ctx.db, s3: counting.s3, bucket: ctx.bucket, log: testLog };
    const outcomes = await Promise.all([0, 2].map((idx) => uploadChunkPart(deps, { batchId, idx })));
    expect(outcomes).toEqual([0, 2].map((i) => [{ first: i, last: i, bytes: chunkBytes.get(i) }]));
    // Each that found no upload created one; one won, every other was aborted.
    expect(counting.count("CreateMultipartUploadCommand")).toBe(counting.count("AbortMultipartUploadCommand") + 1);
    await ctx.db.updateTable("chunks").set({ committed: 100 }).where("batch_id", "=", batchId).where("idx", "=", 1).execute();
    expect(await uploadChunkPart(deps, { batchId, idx: 1 })).toEqual([{ first: 1, last: 1, bytes: chunkBytes.get(1) }]);
    const uploadId = (await batchRow(ctx, batchId)).output_upload_id;
    expect((await partRows(ctx, batchId)).map((p) => [p.first_chunk, p.upload_id])).toEqual([0, 1, 2].map((i) => [i, uploadId]));
    const { count } = await finalize(ctx, batchId);
    expect(count("UploadPartCommand")).toBe(0);
    await expectOutput(ctx, batchId, tenant, expected, requests);
  });

  // With 35 of those lines a chunk's output is ~2.2 MiB: two chunks stay below S3's 5 MiB part
  // minimum, three reach it. Seven chunks make parts of chunks 0-2, 3-5 and 6 (the last, small).
  const GROUPED = { total: 245, chunkSize: 35, extra: BIG };

  async function ranGroupedBatch() {
    const ran = await ranBatch(GROUPED);
    const sizes = [...ran.chunkBytes.values()];
    expect([...ran.chunkBytes.keys()]).toEqual([0, 1, 2, 3, 4, 5, 6]);
    for (const b of sizes) {
      expect(2 * b).toBeLessThan(MIN_PART_BYTES);
      expect(3 * b).toBeGreaterThanOrEqual(MIN_PART_BYTES);
    }
    const sum = (first: number, last: number) => sizes.slice(first, last + 1).reduce((n, b) => n + b, 0);
    return { ...ran, sum };
  }

  /** Forgets every part and the batch's upload and marks each chunk unfinished, so the test completes them itself. */
  async function reopen(ctx: TestContext, batchId: string) {
    await ctx.db.deleteFrom("output_parts").where("batch_id", "=", batchId).execute();
    await ctx.db.updateTable("batches").set({ output_upload_id: null }).where("id", "=", batchId).execute();
    await ctx.db.updateTable("chunks").set({ committed: 0 }).where("batch_id", "=", batchId).execute();
  }

  const complete = (ctx: TestContext, batchId: string, idx: number) =>
    ctx.db.updateTable("chunks").set({ committed: GROUPED.chunkSize }).where("batch_id", "=", batchId).where("idx", "=", idx).execute();

  const ranges = (rows: { first_chunk: number; last_chunk: number; part_number: number; bytes: number }[]) => rows.map((p) => [p.first_chunk, p.last_chunk, p.part_number, p.bytes]);

  it("chunk outputs each below 5 MiB: each run of chunks reaching 5 MiB is one part; the finalizer only completes them", async () => {
    const { ctx, batchId, tenant, requests, expected, sum } = await ranGroupedBatch();
    const parts = await uploadedParts(ctx, batchId, 3);
    const uploadId = (await batchRow(ctx, batchId)).output_upload_id;
    expect(ranges(parts)).toEqual([
      [0, 2, 1, sum(0, 2)],
      [3, 5, 4, sum(3, 5)],
      [6, 6, 7, sum(6, 6)],
    ]);
    expect(parts.map((p) => p.upload_id)).toEqual([uploadId, uploadId, uploadId]);

    const { calls, count } = await finalize(ctx, batchId);
    expect([count("CreateMultipartUploadCommand"), count("UploadPartCommand"), count("UploadPartCopyCommand"), count("GetObjectCommand")]).toEqual([0, 0, 0, 0]);
    const completes = calls.filter((c) => c.name === "CompleteMultipartUploadCommand");
    expect(completes.map((c) => c.input.MultipartUpload)).toEqual([{ Parts: parts.map((p) => ({ PartNumber: p.part_number, ETag: p.etag })) }]);
    await expectOutput(ctx, batchId, tenant, expected, requests);
    const manifest = JSON.parse(await readObject(ctx, keys.manifest(tenant, batchId)));
    expect(manifest.output).toMatchObject({ lines: 245, bytes: expected.length });
  });

  it("chunks completing out of order: runs form around them, and a run that can no longer reach 5 MiB joins the part after it", async () => {
    const { ctx, batchId, tenant, requests, expected, sum } = await ranGroupedBatch();
    await uploadedParts(ctx, batchId, 3);
    await reopen(ctx, batchId);
    const deps = { db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, log: testLog };
    const outcomes: [number, unknown][] = [];
    for (const idx of [2, 3, 4, 0, 1, 6, 5]) {
      await complete(ctx, batchId, idx);
      outcomes.push([idx, await uploadChunkPart(deps, { batchId, idx })]);
    }
    expect(outcomes).toEqual([
      [2, []],
      [3, []],
      [4, [{ first: 2, last: 4, bytes: sum(2, 4) }]],
      // Chunk 1 is still running: chunk 0 alone may grow yet.
      [0, []],
      // Chunks 0-1 (~4.4 MiB) are closed in on both sides: part 1 takes chunks 0-4 in place of part 3.
      [1, [{ first: 0, last: 4, bytes: sum(0, 4) }]],
      [6, [{ first: 6, last: 6, bytes: sum(6, 6) }]],
      [5, [{ first: 5, last: 6, bytes: sum(5, 6) }]],
    ]);
    const parts = await partRows(ctx, batchId);
    expect(ranges(parts)).toEqual([
      [0, 4, 1, sum(0, 4)],
      [5, 6, 6, sum(5, 6)],
    ]);
    const { calls, count } = await finalize(ctx, batchId);
    expect([count("CreateMultipartUploadCommand"), count("UploadPartCommand"), count("GetObjectCommand")]).toEqual([0, 0, 0]);
    // Parts 3 and 7 were uploaded too, and are left out: S3 drops parts a completion does not list.
    expect(calls.filter((c) => c.name === "CompleteMultipartUploadCommand").map((c) => c.input.MultipartUpload)).toEqual([
      { Parts: parts.map((p) => ({ PartNumber: p.part_number, ETag: p.etag })) },
    ]);
    await expectOutput(ctx, batchId, tenant, expected, requests);
  });

  it("chunks completing at the same moment: the batch row makes them decide one at a time, so every chunk is in exactly one part", async () => {
    const { ctx, batchId, tenant, requests, expected, sum } = await ranGroupedBatch();
    await uploadedParts(ctx, batchId, 3);
    await reopen(ctx, batchId);
    for (let idx = 0; idx < 7; idx++) await complete(ctx, batchId, idx);
    const counting = countingS3(ctx.config);
    suite.cleanup(async () => counting.s3.destroy());
    const deps = { db: ctx.db, s3: counting.s3, bucket: ctx.bucket, log: testLog };
    const outcomes = await Promise.all([0, 1, 2, 3, 4, 5, 6].map((idx) => uploadChunkPart(deps, { batchId, idx })));
    // The first to decide finds all seven complete and claims every part; the rest find nothing left.
    expect(outcomes.filter((o) => o.length > 0)).toEqual([
      [
        { first: 0, last: 2, bytes: sum(0, 2) },
        { first: 3, last: 5, bytes: sum(3, 5) },
        { first: 6, last: 6, bytes: sum(6, 6) },
      ],
    ]);
    expect([counting.count("CreateMultipartUploadCommand"), counting.count("UploadPartCommand")]).toEqual([1, 3]);
    expect(ranges(await partRows(ctx, batchId))).toEqual([
      [0, 2, 1, sum(0, 2)],
      [3, 5, 4, sum(3, 5)],
      [6, 6, 7, sum(6, 6)],
    ]);
    const { count } = await finalize(ctx, batchId);
    expect(count("UploadPartCommand")).toBe(0);
    await expectOutput(ctx, batchId, tenant, expected, requests);
  });

  it("a completion that makes several parts: one refused upload does not stop the others; the finalizer uploads only that one", async () => {
    const { ctx, batchId, tenant, requests, expected, sum } = await ranGroupedBatch();
    await uploadedParts(ctx, batchId, 3);
    await reopen(ctx, batchId);
    for (let idx = 0; idx < 7; idx++) await complete(ctx, batchId, idx);
    // S3 refuses the first part this client uploads, and only that one.
    const s3 = createS3Client(s3Settings(ctx.config));
    suite.cleanup(async () => s3.destroy());
    let refused = 0;
    s3.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "UploadPartCommand" && refused++ === 0) {
          throw Object.assign(new Error("simulated: part refused"), { name: "AccessDenied", $metadata: { httpStatusCode: 403 } });
        }
        return next(args);
      },
      { step: "initialize", name: "barge-test-refuse-first-part" },
    );
    await expect(uploadChunkPart({ db: ctx.db, s3, bucket: ctx.bucket, log: testLog }, { batchId, idx: 3 })).rejects.toThrow("simulated: part refused");
    expect(refused).toBe(3);
    // All three runs claimed; the two after the refused one uploaded and recorded.
    const rows = await partRows(ctx, batchId);
    expect(ranges(rows)).toEqual([
      [0, 2, 1, sum(0, 2)],
      [3, 5, 4, sum(3, 5)],
      [6, 6, 7, sum(6, 6)],
    ]);
    expect(rows.map((r) => r.etag !== null)).toEqual([false, true, true]);
    const { calls } = await finalize(ctx, batchId);
    expect(calls.filter((c) => c.name === "UploadPartCommand").map((c) => [c.input.PartNumber, c.input.ContentLength])).toEqual([[1, sum(0, 2)]]);
    await expectOutput(ctx, batchId, tenant, expected, requests);
  });

  it("a stale part of several chunks is rebuilt whole at finalize, from its chunks' segments; the valid ones are kept", async () => {
    const { ctx, batchId, tenant, requests, segments, expected } = await ranGroupedBatch();
    await uploadedParts(ctx, batchId, 3);
    await ctx.db.updateTable("output_parts").set({ source_digest: "built-from-other-segments" }).where("batch_id", "=", batchId).where("first_chunk", "=", 3).execute();
    const { calls, count } = await finalize(ctx, batchId);
    expect(calls.filter((c) => c.name === "UploadPartCommand").map((c) => c.input.PartNumber)).toEqual([4]);
    expect(calls.filter((c) => c.name === "GetObjectCommand").map((c) => c.input.Key)).toEqual(segments.filter((s) => s.chunk_idx >= 3 && s.chunk_idx <= 5).map((s) => s.s3_key));
    expect([count("CreateMultipartUploadCommand"), count("CompleteMultipartUploadCommand")]).toEqual([0, 1]);
    await expectOutput(ctx, batchId, tenant, expected, requests);
  });

  it("a crash between a run's upload and its record: the finalizer uploads that run again as its one part", async () => {
    const { ctx, batchId, tenant, requests, segments, expected } = await ranGroupedBatch();
    await uploadedParts(ctx, batchId, 3);
    // Claimed and uploaded, never recorded.
    await ctx.db.updateTable("output_parts").set({ upload_id: null, etag: null, source_digest: null }).where("batch_id", "=", batchId).where("first_chunk", "=", 0).execute();
    const { calls } = await finalize(ctx, batchId);
    expect(calls.filter((c) => c.name === "UploadPartCommand").map((c) => [c.input.PartNumber, c.input.ContentLength])).toEqual([
      [1, segments.filter((s) => s.chunk_idx <= 2).reduce((n, s) => n + s.bytes, 0)],
    ]);
    await expectOutput(ctx, batchId, tenant, expected, requests);
  });

  it("most runs stale: the output upload is aborted and the segments stitched the old way", async () => {
    const { ctx, batchId, tenant, requests, segments, expected } = await ranGroupedBatch();
    await uploadedParts(ctx, batchId, 3);
    await ctx.db.updateTable("output_parts").set({ upload_id: "an-upload-that-was-replaced" }).where("batch_id", "=", batchId).where("first_chunk", "in", [0, 6]).execute();
    const { count } = await finalize(ctx, batchId);
    expect([count("AbortMultipartUploadCommand"), count("CreateMultipartUploadCommand"), count("GetObjectCommand")]).toEqual([1, 1, segments.length]);
    await expectOutput(ctx, batchId, tenant, expected, requests);
  });
});

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  type CompletedPart,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, expect, it } from "vitest";
import { MIN_PART_BYTES } from "@barge/core";
import { createTestContext, type TestContext } from "../support/context.js";
import { startServices, type Services } from "../support/services.js";
import { describeStrict, KiB, listUploads, MiB, S3Recorder, sha256 } from "./helpers.js";
import { checkEmbeddingOutput, committedSegments, embeddingRequests, holdSegmentCleanup, listKeys, readObject, submitBatch, waitFinal, waitSegmentsRemoved, type Segment } from "./pipeline.js";

// SEGMENT_MAX_LINES 1 makes one segment per request; 384-float embeddings make each ~8.4 KB, and
// 700 of them ~5.9 MB in all. S3 wants every part but the last to be 5 MiB or more, so hundreds
// of segments must be packed into each part; one part per segment is refused.
const DIMENSIONS = 384;
const REQUESTS = 700;

async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}

describeStrict("a batch of many tiny segments", () => {
  let ctx: TestContext;
  let svc: Services;
  let rec: S3Recorder;
  let cleanup: { release(): void } | undefined;
  let segments: Segment[] = [];
  beforeAll(async () => {
    ctx = await createTestContext({ CHUNK_SIZE: "100", SEGMENT_MAX_LINES: "1", AGENT_POLL_MS: "50", API_POLL_MS: "50" });
    rec = new S3Recorder(ctx.s3);
    svc = await startServices(ctx, { agents: 2 });
  });
  afterAll(async () => {
    cleanup?.release();
    await svc?.stop();
    await ctx?.close();
  });

  it("completes, its result byte-identical to the segments' concatenation, packed into parts of 5 MiB or more but the last", async () => {
    const requests = embeddingRequests(REQUESTS, DIMENSIONS, "tiny");
    // Keep the segments' rows until the test has read them (see holdSegmentCleanup).
    cleanup = holdSegmentCleanup(rec);
    const id = await submitBatch(svc.apiUrl, requests, "tiny.jsonl");
    const batch = await waitFinal(svc.apiUrl, id);
    expect(batch.status).toBe("completed");
    expect(batch.request_counts).toEqual({ total: REQUESTS, completed: REQUESTS, failed: 0 });
    const outKey = batch.output_location!.key;

    segments = await committedSegments(ctx, [rec], id, "output");
    cleanup.release();
    expect(segments).toHaveLength(REQUESTS);
    for (const s of segments) expect(s.body.length).toBeLessThan(16 * KiB);
    const expected = Buffer.concat(segments.map((s) => s.body));
    expect(expected.length).toBeGreaterThan(5 * MiB);

    const output = await readObject(ctx, outKey);
    expect(sha256(output)).toBe(sha256(expected));
    checkEmbeddingOutput(output.toString("utf8"), requests);

    // Packed client-side: every chunk's output (~0.8 MiB) is below S3's part minimum, so the agents
    // upload runs of chunks as parts, and no part but the last may be below 5 MiB. The whole output
    // (~5.6 MiB) is one or two such parts, as the chunks' sizes and the order they finish in fall
    // (chunks 0-5 may just reach 5 MiB). Part 1 starts at chunk 0; the parts listed add up to it all.
    expect(rec.of("UploadPartCopyCommand", (k) => k === outKey)).toEqual([]);
    const completes = rec.of("CompleteMultipartUploadCommand", (k) => k === outKey);
    // One complete, or its repeat after an answer lost under load (RGW answers a repeated complete
    // of the same parts with success): every one names the same parts.
    expect(completes.length).toBeGreaterThanOrEqual(1);
    const listed = completes[0]!.parts!;
    for (const c of completes) expect(c.parts).toEqual(listed);
    expect(listed[0]).toBe(1);
    expect(listed.length === 1 || listed.length === 2).toBe(true);
    const uploaded = rec.of("UploadPartCommand", (k) => k === outKey);
    const sizes = listed.map((n) => uploaded.filter((u) => u.partNumber === n).at(-1)?.contentLength ?? 0);
    expect(sizes.reduce((n, b) => n + b, 0)).toBe(expected.length);
    for (const b of sizes.slice(0, -1)) expect(b).toBeGreaterThanOrEqual(MIN_PART_BYTES);
    const manifest = JSON.parse((await readObject(ctx, outKey.replace(/output\.jsonl$/, "manifest.json"))).toString("utf8")) as { output: { etag: string } };
    expect(manifest.output.etag).toMatch(new RegExp(`^"[0-9a-f]{32}-${listed.length}"$`));

    await waitSegmentsRemoved(ctx, id);
    expect(await listUploads(ctx.s3, ctx.bucket)).toEqual([]);
  });

  it("where a naive one-part-per-segment stitch is refused with EntityTooSmall", async () => {
    expect(segments).toHaveLength(REQUESTS);
    const Key = "naive/output.jsonl";
    const { UploadId } = await ctx.s3.send(new CreateMultipartUploadCommand({ Bucket: ctx.bucket, Key }));
    try {
      const parts: CompletedPart[] = [];
      await pool(segments.map((s, i) => ({ body: s.body, PartNumber: i + 1 })), 16, async ({ body, PartNumber }) => {
        const res = await ctx.s3.send(new UploadPartCommand({ Bucket: ctx.bucket, Key, UploadId, PartNumber, Body: body }));
        parts.push({ PartNumber, ETag: res.ETag! });
      });
      parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
      const err = await ctx.s3
        .send(new CompleteMultipartUploadCommand({ Bucket: ctx.bucket, Key, UploadId, MultipartUpload: { Parts: parts } }))
        .then(() => undefined, (e: unknown) => e as { name?: string; $metadata?: { httpStatusCode?: number } });
      expect(err?.name).toBe("EntityTooSmall");
      expect(err?.$metadata?.httpStatusCode).toBe(400);
    } finally {
      await ctx.s3.send(new AbortMultipartUploadCommand({ Bucket: ctx.bucket, Key, UploadId }));
    }
    expect(await listUploads(ctx.s3, ctx.bucket)).toEqual([]);
    expect(await listKeys(ctx, "naive/")).toEqual([]);
  });
});

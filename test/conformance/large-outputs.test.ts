import { afterAll, beforeAll, expect, it } from "vitest";
import { MIN_PART_BYTES } from "@barge/core";
import { createTestContext, type TestContext } from "../support/context.js";
import { startServices, type Services } from "../support/services.js";
import { describeStrict, listUploads, MiB, S3Recorder, sha256 } from "./helpers.js";
import { checkEmbeddingOutput, committedSegments, embeddingRequests, holdSegmentCleanup, readObject, submitBatch, waitFinal, waitSegmentsRemoved } from "./pipeline.js";

// Embeddings of 4,096 floats make ~88 KB result lines, so 72 lines are a ~6.3 MiB segment.
// CHUNK_SIZE 144 and SEGMENT_MAX_LINES 72 over 225 requests give the segments
//   chunk 0: 72, 72   chunk 1: 72, 9
// three of at least 5 MiB, which the stitcher must copy server-side (UploadPartCopy), and a small
// tail, which it uploads itself as the last part. SEGMENT_MAX_MS is large so no segment is cut
// early by age. Both chunks' outputs exceed 5 MiB, so the agents would upload them as parts of
// the output while the batch runs (test/conformance/chunk-parts.test.ts); here the server
// refuses those uploads, and the batch must take the stitch path as if they never existed.
const DIMENSIONS = 4096;
const REQUESTS = 225;
const SEGMENT_LINES = 72;

describeStrict("a batch with large outputs whose chunk parts could not be uploaded is stitched with UploadPartCopy", () => {
  let ctx: TestContext;
  let svc: Services;
  let rec: S3Recorder;
  let cleanup: { release(): void } | undefined;
  beforeAll(async () => {
    ctx = await createTestContext({ CHUNK_SIZE: "144", SEGMENT_MAX_LINES: String(SEGMENT_LINES), SEGMENT_MAX_MS: "600000", AGENT_POLL_MS: "50", API_POLL_MS: "50" });
    rec = new S3Recorder(ctx.s3);
    svc = await startServices(ctx, { agents: 2 });
  });
  afterAll(async () => {
    cleanup?.release();
    await svc?.stop();
    await ctx?.close();
  });

  it("copies every segment of 5 MiB or more server-side and uploads only the small tail; the result is byte-identical", async () => {
    const requests = embeddingRequests(REQUESTS, DIMENSIONS, "big");
    // Keep the segments' rows until the test has read them (see holdSegmentCleanup).
    cleanup = holdSegmentCleanup(rec);
    // Chunk parts are whole chunk outputs (>= 5 MiB here); the stitcher's only UploadPart is the small tail.
    rec.failWith = (c) =>
      c.command === "UploadPartCommand" && c.key?.endsWith("/output.jsonl") && (c.contentLength ?? 0) >= MIN_PART_BYTES
        ? Object.assign(new Error("simulated: chunk part refused"), { name: "AccessDenied", $metadata: { httpStatusCode: 403 } })
        : undefined;
    const id = await submitBatch(svc.apiUrl, requests, "big.jsonl");
    const batch = await waitFinal(svc.apiUrl, id);
    expect(batch.status).toBe("completed");
    expect(batch.request_counts).toEqual({ total: REQUESTS, completed: REQUESTS, failed: 0 });
    expect(batch.error_file_id).toBeNull();
    const outKey = batch.output_location!.key;

    // The segments are as the settings above make them.
    const segments = await committedSegments(ctx, [rec], id, "output");
    cleanup.release();
    rec.failWith = undefined;
    expect(segments.map((s) => `${s.chunk}-${s.seq}`)).toEqual(["0-0", "0-1", "1-0", "1-1"]);
    const big = segments.filter((s) => s.body.length >= MIN_PART_BYTES);
    const small = segments.filter((s) => s.body.length < MIN_PART_BYTES);
    expect(big.map((s) => s.key)).toEqual(segments.slice(0, 3).map((s) => s.key));
    expect(small.map((s) => s.key)).toEqual([segments[3]!.key]);

    // Byte-identical to the concatenation of the segments, and line by line what was asked.
    const expected = Buffer.concat(segments.map((s) => s.body));
    const output = await readObject(ctx, outKey);
    expect(output.length).toBe(expected.length);
    expect(output.length).toBeGreaterThan(3 * 5 * MiB);
    expect(sha256(output)).toBe(sha256(expected));
    checkEmbeddingOutput(output.toString("utf8"), requests);

    // The copy path: one UploadPartCopy into the result per big segment, naming it as the source...
    const copies = rec.of("UploadPartCopyCommand", (k) => k === outKey);
    expect(copies.map((c) => c.copySource).sort()).toEqual(big.map((s) => `${ctx.bucket}/${s.key}`).sort());
    // ...none of them ever downloaded (the agents only PUT segments; only the stitcher reads them)...
    const read = new Set(rec.of("GetObjectCommand").map((c) => c.key));
    for (const s of big) expect(read.has(s.key), `GET ${s.key}`).toBe(false);
    // ...and the only bytes uploaded through the client are the small tail's, as the last part,
    // besides the refused chunk parts (one per chunk, each its whole output).
    const uploads = rec.of("UploadPartCommand", (k) => k === outKey).map((u) => u.contentLength);
    const chunkBytes = [0, 1].map((chunk) => segments.filter((s) => s.chunk === chunk).reduce((n, s) => n + s.body.length, 0));
    expect(uploads.filter((n) => (n ?? 0) < MIN_PART_BYTES)).toEqual([small[0]!.body.length]);
    expect(uploads.filter((n) => (n ?? 0) >= MIN_PART_BYTES).sort()).toEqual([...chunkBytes].sort());
    // Every upload but the stitch's own was the chunk parts', and each was aborted.
    const creates = rec.of("CreateMultipartUploadCommand", (k) => k === outKey).length;
    expect(creates).toBeGreaterThanOrEqual(2);
    expect(rec.of("AbortMultipartUploadCommand", (k) => k === outKey)).toHaveLength(creates - 1);
    expect(rec.of("CompleteMultipartUploadCommand", (k) => k === outKey)).toHaveLength(1);

    // Four parts in S3's own account of the object, the segments gone, no upload left open.
    const manifest = JSON.parse((await readObject(ctx, outKey.replace(/output\.jsonl$/, "manifest.json"))).toString("utf8")) as {
      output: { bytes: number; etag: string; lines: number };
    };
    expect(manifest.output).toMatchObject({ bytes: expected.length, lines: REQUESTS });
    expect(manifest.output.etag).toMatch(/^"[0-9a-f]{32}-4"$/);
    await waitSegmentsRemoved(ctx, id);
    expect(await listUploads(ctx.s3, ctx.bucket)).toEqual([]);
  });
});

import { afterAll, beforeAll, expect, it } from "vitest";
import { MIN_PART_BYTES } from "@barge/core";
import { createTestContext, type TestContext } from "../support/context.js";
import { startServices, type Services } from "../support/services.js";
import { describeStrict, listUploads, S3Recorder, sha256, waitFor } from "./helpers.js";
import { embeddingRequests, readObject, submitBatch, waitFinal, waitSegmentsRemoved } from "./pipeline.js";

// Embeddings of 4,096 floats make ~88 KB result lines. CHUNK_SIZE 72 over 153 requests gives
// three chunks of one segment each; chunk 1's requests all fail (the sim's 400 marker), so
//   chunk 0: 72 results (~6.3 MiB)   chunk 1: 72 error lines, no output   chunk 2: 9 results
// The agent uploads chunk 0's output as part 1 while the batch runs and chunks 1-2 (the run that
// ends the batch; the last part may be small) as part 3, numbered after chunk 2, the run's first
// chunk with output: the finalizer completes parts 1 and 3, a gap real S3 must accept.
const DIMENSIONS = 4096;
const CHUNK = 72;
const REQUESTS = 2 * CHUNK + 9;
const FAIL = "__sim_fail_400__";

describeStrict("chunk outputs are uploaded as parts during the run; finalizing only completes the upload", () => {
  let ctx: TestContext;
  let svc: Services;
  let rec: S3Recorder;
  beforeAll(async () => {
    ctx = await createTestContext({ CHUNK_SIZE: String(CHUNK), SEGMENT_MAX_LINES: String(CHUNK), SEGMENT_MAX_MS: "600000", AGENT_POLL_MS: "50", API_POLL_MS: "50" });
    rec = new S3Recorder(ctx.s3);
    svc = await startServices(ctx, { agents: 1 });
  });
  afterAll(async () => {
    await svc?.stop();
    await ctx?.close();
  });

  it("completes parts 1 and 3 uploaded while the batch ran: byte-identical output, no segment read at finalize, no upload left open", async () => {
    const requests = embeddingRequests(REQUESTS, DIMENSIONS, "cp").map((r, i) =>
      i >= CHUNK && i < 2 * CHUNK ? { ...r, body: { ...r.body, input: `${r.body.input} ${FAIL}` } } : r,
    );
    let batchId = "";
    // Chunk 2 commits only once chunk 0's part (uploaded in the background) is recorded, so which
    // parts exist when the batch turns finalizing does not depend on timing.
    rec.holdWith = (c) =>
      c.command === "PutObjectCommand" && c.key?.includes("/parts/000002-")
        ? waitFor("chunk 0's part to be recorded", async () => {
            const row = await ctx.db.selectFrom("output_parts").select("first_chunk").where("batch_id", "=", batchId).where("first_chunk", "=", 0).where("etag", "is not", null).executeTakeFirst();
            return row ? true : undefined;
          }).then(() => undefined)
        : undefined;
    batchId = await submitBatch(svc.apiUrl, requests, "parts.jsonl");
    const batch = await waitFinal(svc.apiUrl, batchId);
    rec.holdWith = undefined;
    expect(batch.status).toBe("completed");
    expect(batch.request_counts).toEqual({ total: REQUESTS, completed: CHUNK + 9, failed: CHUNK });
    const outKey = batch.output_location!.key;

    // The output segments the agent PUT, in (chunk, seq) order: chunk 0's and chunk 2's.
    const segments = rec
      .of("PutObjectCommand", (k) => k.startsWith(`batches/${batchId}/parts/`) && k.endsWith(".output.jsonl"))
      .sort((a, b) => a.key!.localeCompare(b.key!));
    expect(segments.map((s) => s.key!.split("/").at(-1)!.slice(0, 13))).toEqual(["000000-000000", "000002-000000"]);
    const [first, last] = segments.map((s) => s.body!);
    expect(first!.length).toBeGreaterThanOrEqual(MIN_PART_BYTES);
    expect(last!.length).toBeLessThan(MIN_PART_BYTES);
    const output = await readObject(ctx, outKey);
    expect(output.length).toBe(first!.length + last!.length);
    expect(sha256(output)).toBe(sha256(Buffer.concat([first!, last!])));

    // One upload, its two parts each uploaded once, whole, during the run; no copy, no stitch.
    expect(rec.of("CreateMultipartUploadCommand", (k) => k === outKey)).toHaveLength(1);
    expect(rec.of("UploadPartCommand", (k) => k === outKey).map((u) => [u.partNumber, u.contentLength])).toEqual([
      [1, first!.length],
      [3, last!.length],
    ]);
    expect(rec.of("UploadPartCopyCommand")).toEqual([]);
    expect(rec.of("CompleteMultipartUploadCommand", (k) => k === outKey)).toHaveLength(1);
    // Each output segment was read exactly once: by the upload of its chunk's part, none at finalize.
    expect(rec.of("GetObjectCommand", (k) => k.startsWith(`batches/${batchId}/parts/`) && k.endsWith(".output.jsonl")).map((c) => c.key).sort()).toEqual(
      segments.map((s) => s.key),
    );

    // S3's own account: two parts. The error file took the old path; nothing is left open.
    const manifest = JSON.parse((await readObject(ctx, outKey.replace(/output\.jsonl$/, "manifest.json"))).toString("utf8")) as {
      output: { bytes: number; etag: string; lines: number };
      errors: { lines: number } | null;
    };
    expect(manifest.output).toMatchObject({ bytes: output.length, lines: CHUNK + 9 });
    expect(manifest.output.etag).toMatch(/^"[0-9a-f]{32}-2"$/);
    expect(manifest.errors).toMatchObject({ lines: CHUNK });
    await waitSegmentsRemoved(ctx, batchId);
    expect(await ctx.db.selectFrom("output_parts").selectAll().where("batch_id", "=", batchId).execute()).toEqual([]);
    expect(await listUploads(ctx.s3, ctx.bucket)).toEqual([]);
  });

  it("a batch cancelled after a chunk part was uploaded publishes what was committed and leaves no upload open", async () => {
    const requests = embeddingRequests(REQUESTS, DIMENSIONS, "cx");
    let batchId = "";
    let cancelled!: () => void;
    const cancelledNow = new Promise<void>((r) => (cancelled = r));
    // Chunk 1's first segment is held until chunk 0's part is recorded and the batch is cancelled.
    rec.holdWith = (c) =>
      c.command === "PutObjectCommand" && c.key?.includes("/parts/000001-")
        ? waitFor("chunk 0's part to be recorded", async () => {
            const row = await ctx.db.selectFrom("output_parts").select("first_chunk").where("batch_id", "=", batchId).where("first_chunk", "=", 0).where("etag", "is not", null).executeTakeFirst();
            return row ? true : undefined;
          }).then(async () => {
            const res = await fetch(`${svc.apiUrl}/v1/batches/${batchId}/cancel`, { method: "POST" });
            expect(res.status).toBe(200);
            cancelled();
          })
        : undefined;
    batchId = await submitBatch(svc.apiUrl, requests, "cancel.jsonl");
    await cancelledNow;
    const batch = await waitFinal(svc.apiUrl, batchId);
    rec.holdWith = undefined;
    expect(batch.status).toBe("cancelled");
    // Chunk 0 whole, then the committed prefix of each chunk that was running (an agent runs the
    // next chunk alongside the current one's tail), in input order.
    const chunks = await ctx.db.selectFrom("chunks").select(["idx", "request_start", "committed"]).where("batch_id", "=", batchId).orderBy("idx").execute();
    expect(chunks[0]!.committed).toBe(CHUNK);
    const done = batch.request_counts.completed;
    expect(done).toBe(chunks.reduce((n, c) => n + c.committed, 0));
    const output = await readObject(ctx, batch.output_location!.key);
    const chunk0 = rec.of("PutObjectCommand", (k) => k.startsWith(`batches/${batchId}/parts/000000-`) && k.endsWith(".output.jsonl"))[0]!.body!;
    expect(sha256(output.subarray(0, chunk0.length))).toBe(sha256(chunk0));
    const lines = output.toString("utf8").split("\n").filter((l) => l !== "");
    const expected = chunks.flatMap((c) => requests.slice(c.request_start, c.request_start + c.committed).map((r) => r.custom_id));
    expect(lines.map((l) => (JSON.parse(l) as { custom_id: string }).custom_id)).toEqual(expected);

    await waitSegmentsRemoved(ctx, batchId);
    expect(await ctx.db.selectFrom("output_parts").selectAll().where("batch_id", "=", batchId).execute()).toEqual([]);
    expect(await listUploads(ctx.s3, ctx.bucket)).toEqual([]);
  });
});

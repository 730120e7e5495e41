import { AbortMultipartUploadCommand, ListPartsCommand, type S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createS3Client, keys, MIN_PART_BYTES } from "@barge/core";
import { createTestContext, type TestContext } from "../support/context.js";
import { startServices, type Services } from "../support/services.js";
import { describeStrict, listUploads, S3Recorder, sha256, waitFor } from "./helpers.js";
import { checkEmbeddingOutput, committedSegments, embeddingRequests, listKeys, readObject, submitBatch, waitFinal, waitSegmentsRemoved, type EmbeddingRequest, type Segment } from "./pipeline.js";

// A finalizer that dies after uploading every part of its stitch but before
// CompleteMultipartUpload leaves an open multipart upload, whose id it persisted in
// `batches.stitch_state` before sending any part. The next finalizer must finish the job from
// there and leave no multipart upload behind, whether the upload is still there (resume it) or
// has vanished meanwhile (say a lifecycle rule aborted it: start over).
//
// The crash is staged with the real services: the first generation talks to S3 through a client
// that never sends CompleteMultipartUpload for a result (as if the process died right there), and
// is then stopped hard; a second generation with a healthy client takes over once the batch
// lease lapses.
//
// Each batch: 150 embeddings of ~88 KB in one chunk, SEGMENT_MAX_LINES 70 → segments of 70, 70
// and 10 lines → parts: UploadPartCopy, UploadPartCopy, and an uploaded tail. The agents would
// upload the chunk's output as a part while the batch runs (test/conformance/chunk-parts.test.ts);
// the first generation's server refuses that, so the batches take the stitch path under test.
const REQUESTS = 150;
const DIMENSIONS = 4096;
const PARTS = 3;

type Name = "resumed" | "vanished";
interface Run {
  requests: EmbeddingRequest[];
  id: string;
  outKey: string;
  uploadId: string;
  segments: Segment[];
}

describeStrict("a finalizer crash between the stitch parts and CompleteMultipartUpload", () => {
  let ctx: TestContext;
  let services: Services | undefined;
  const clients: S3Client[] = [];
  let recA: S3Recorder;
  let recB: S3Recorder;
  const runs = new Map<Name, Run>();
  const run = (name: Name) => runs.get(name)!;

  beforeAll(async () => {
    ctx = await createTestContext({ CHUNK_SIZE: "150", SEGMENT_MAX_LINES: "70", SEGMENT_MAX_MS: "600000", LEASE_SECONDS: "3", AGENT_POLL_MS: "50", API_POLL_MS: "50" });
  });
  afterAll(async () => {
    await services?.stop();
    for (const c of clients) c.destroy();
    await ctx?.close();
  });

  /** Another client on the suite's bucket, so each generation of services has its own. */
  function newClient(): S3Client {
    const c = createS3Client({
      endpoint: ctx.config.S3_ENDPOINT,
      region: ctx.config.S3_REGION,
      accessKeyId: ctx.config.S3_ACCESS_KEY_ID,
      secretAccessKey: ctx.config.S3_SECRET_ACCESS_KEY,
      forcePathStyle: true,
    });
    clients.push(c);
    return c;
  }

  const batchRow = (id: string) => ctx.db.selectFrom("batches").select(["status", "stitch_state"]).where("id", "=", id).executeTakeFirstOrThrow();

  it("stage: every part uploaded, the upload id persisted, no CompleteMultipartUpload, then a hard stop", async () => {
    const s3 = newClient();
    recA = new S3Recorder(s3);
    recA.failWith = (c) =>
      c.command === "CompleteMultipartUploadCommand" && c.key?.startsWith("outputs/")
        ? new Error("simulated crash before CompleteMultipartUpload")
        : // A chunk part is the whole chunk's output; the stitch's only UploadPart is the small tail.
          c.command === "UploadPartCommand" && c.key?.startsWith("outputs/") && (c.contentLength ?? 0) >= MIN_PART_BYTES
          ? Object.assign(new Error("simulated: chunk part refused"), { name: "AccessDenied", $metadata: { httpStatusCode: 403 } })
          : undefined;
    services = await startServices({ ...ctx, s3 });
    for (const name of ["resumed", "vanished"] as const) {
      const requests = embeddingRequests(REQUESTS, DIMENSIONS, name);
      const id = await submitBatch(services.apiUrl, requests, `${name}.jsonl`);
      runs.set(name, { requests, id, outKey: keys.output("default", id), uploadId: "", segments: [] });
    }
    for (const r of runs.values()) {
      r.uploadId = await waitFor(`batch ${r.id} to attempt CompleteMultipartUpload`, async () => {
        const row = await batchRow(r.id);
        const attempted = recA.of("CompleteMultipartUploadCommand", (k) => k === r.outKey).length > 0;
        return row.status === "finalizing" && attempted ? row.stitch_state?.output : undefined;
      });
    }
    await services.stop();
    services = undefined;

    for (const r of runs.values()) {
      expect((await batchRow(r.id)).status).toBe("finalizing");
      r.segments = await committedSegments(ctx, [recA], r.id, "output");
      expect(r.segments.map((s) => `${s.chunk}-${s.seq}`)).toEqual(["0-0", "0-1", "0-2"]);
      // However often the crashed finalizer retried, it kept to the one upload it persisted
      // (the other was the chunk part's, refused, and aborted by the finalizer).
      expect(recA.of("CreateMultipartUploadCommand", (k) => k === r.outKey)).toHaveLength(2);
      const parts = await ctx.s3.send(new ListPartsCommand({ Bucket: ctx.bucket, Key: r.outKey, UploadId: r.uploadId }));
      expect(parts.Parts?.map((p) => p.PartNumber)).toEqual([1, 2, 3]);
      expect(parts.Parts![0]!.Size).toBeGreaterThanOrEqual(MIN_PART_BYTES);
      expect(parts.Parts![1]!.Size).toBeGreaterThanOrEqual(MIN_PART_BYTES);
    }
    expect((await listUploads(ctx.s3, ctx.bucket)).sort()).toEqual([...runs.values()].map((r) => `${r.outKey}:${r.uploadId}`).sort());
    expect(await listKeys(ctx, "outputs/")).toEqual([]);
  });

  it("recovery: the next finalizer resumes the persisted upload, or starts over when it vanished; no upload is left", async () => {
    expect(runs.size).toBe(2);
    // The "vanished" batch's upload is aborted behind Barge's back.
    await ctx.s3.send(new AbortMultipartUploadCommand({ Bucket: ctx.bucket, Key: run("vanished").outKey, UploadId: run("vanished").uploadId }));

    const s3 = newClient();
    recB = new S3Recorder(s3);
    services = await startServices({ ...ctx, s3 });
    for (const r of runs.values()) {
      const batch = await waitFinal(services.apiUrl, r.id);
      expect(batch.status).toBe("completed");
      expect(batch.request_counts).toEqual({ total: REQUESTS, completed: REQUESTS, failed: 0 });

      const output = await readObject(ctx, r.outKey);
      expect(sha256(output)).toBe(sha256(Buffer.concat(r.segments.map((s) => s.body))));
      checkEmbeddingOutput(output.toString("utf8"), r.requests);
      await waitSegmentsRemoved(ctx, r.id);
    }

    const sent = (cmd: string, r: Run) => recB.of(cmd, (k) => k === r.outKey).length;
    // Resumed: no new upload and no part sent again, only the completion.
    const resumed = run("resumed");
    expect([sent("CreateMultipartUploadCommand", resumed), sent("UploadPartCopyCommand", resumed), sent("UploadPartCommand", resumed)]).toEqual([0, 0, 0]);
    expect(sent("CompleteMultipartUploadCommand", resumed)).toBe(1);
    // Vanished: one new upload with every part of the plan, then the completion.
    const vanished = run("vanished");
    expect(sent("CreateMultipartUploadCommand", vanished)).toBe(1);
    expect(sent("UploadPartCopyCommand", vanished) + sent("UploadPartCommand", vanished)).toBe(PARTS);
    expect(sent("CompleteMultipartUploadCommand", vanished)).toBe(1);

    expect(await listUploads(ctx.s3, ctx.bucket)).toEqual([]);
  });
});

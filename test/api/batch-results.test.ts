import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { claimBatchWork, claimChunk, newId, putObject, readConcatenation, type ChunkRow, type SegmentRef } from "@barge/core";
import { createEngineClient, finalizeBatch, startChunk, type ChunkRun, type EngineClient } from "@barge/agent/testing";
import { createEngineSim, type EngineSim } from "@barge/engine-sim";
import { startBareApi, type TestApi } from "../support/api-harness.js";
import { testLog } from "../support/context.js";
import { batchRow, chunkRows, parseJsonl } from "../support/results.js";
import { chatLine, insertBatch, putInputFile, seedBatch } from "../support/seed.js";

const CHUNK = 6;
const TOTAL = 18;

/** GET of a batch's results as raw bytes, with the answer's status and headers. */
async function results(t: TestApi, batchId: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${t.url}/v1/batches/${batchId}/results`, { headers });
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}

describe("GET /v1/batches/{id}/results", () => {
  let t: TestApi;
  let sim: EngineSim;
  let engine: EngineClient;
  const requests = Array.from({ length: TOTAL }, (_, i) => chatLine(`r-${i}`, `results ${i}`));
  let batchId: string;
  /** What `/results` streamed while the batch ran, checked against the final output later. */
  let partial: Buffer;
  /** Chunk 1, claimed and left unfinished by the first test, run to its end by the second. */
  let heldChunk: ChunkRow | undefined;

  beforeAll(async () => {
    // One request in flight at a time, so a drain stops the chunk at a known place.
    t = await startBareApi({ CHUNK_SIZE: String(CHUNK), SEGMENT_MAX_LINES: "2", AGENT_CONCURRENCY: "1" });
    sim = await createEngineSim({ models: ["barge-sim-1"] });
    engine = createEngineClient({ baseUrl: sim.url, connections: 2, timeoutMs: 30_000, maxAttempts: 1 });
    batchId = (await seedBatch(t.ctx, requests)).batchId;
  });
  afterAll(async () => {
    await engine?.close();
    await sim?.close();
    await t?.close();
  });

  const runDeps = (onResult?: () => void) => ({ db: t.ctx.db, s3: t.ctx.s3, bucket: t.ctx.bucket, engine, log: testLog, config: t.ctx.config, ...(onResult ? { onResult } : {}) });
  const claim = () => claimChunk(t.ctx.db, { agentId: "by-hand", models: ["barge-sim-1"], leaseSeconds: 60 });

  test("while the batch runs: the committed results so far, an in-order prefix, marked partial", async () => {
    const before = await results(t, batchId);
    expect([before.status, before.headers.get("x-barge-partial"), before.bytes.length]).toEqual([200, "true", 0]);

    const first = await claim();
    expect(first!.idx).toBe(0);
    expect(await startChunk(runDeps(), first!).done).toBe("completed");
    // Chunk 1 is drained after its second result: it commits what it has and goes back to the queue.
    const second = await claim();
    expect(second!.idx).toBe(1);
    let seen = 0;
    let run: ChunkRun | undefined;
    run = startChunk(runDeps(() => ++seen === 2 && run?.stop("drain")), second!);
    expect(await run.done).toBe("released");
    // Chunk 1 is claimed again and held unfinished while chunk 2 runs to the end: the prefix stops at chunk 1.
    heldChunk = await claim();
    expect(heldChunk!.idx).toBe(1);
    const third = await claim();
    expect(third!.idx).toBe(2);
    expect(await startChunk(runDeps(), third!).done).toBe("completed");
    const chunks = await chunkRows(t.ctx, batchId);
    expect(chunks.map((c) => c.status)).toEqual(["done", "leased", "done"]);
    const held = chunks[1]!.committed;
    expect(held).toBeGreaterThanOrEqual(2);
    expect(held).toBeLessThan(CHUNK);

    const now = await results(t, batchId);
    expect(now.status).toBe(200);
    expect(now.headers.get("content-type")).toBe("application/x-ndjson");
    expect(now.headers.get("content-disposition")).toBe(`attachment; filename="${batchId}_results.jsonl"`);
    expect(now.headers.get("x-barge-partial")).toBe("true");
    expect(now.headers.get("accept-ranges")).toBe("bytes");
    expect(now.headers.get("content-length")).toBeNull();
    const lines = parseJsonl(now.bytes.toString("utf8"));
    expect(lines.map((l) => l.custom_id)).toEqual(requests.slice(0, CHUNK + held).map((r) => r.custom_id));
    expect(lines.every((l) => l.response?.status_code === 200)).toBe(true);
    // The prefix's bytes never change, so ranges of it are answered, its complete length unknown.
    const size = now.bytes.length;
    const firstLine = now.bytes.indexOf("\n") + 1;
    const cases: [string, string, Buffer][] = [
      ["bytes=0-9", "bytes 0-9/*", now.bytes.subarray(0, 10)],
      [`bytes=${firstLine}-`, `bytes ${firstLine}-${size - 1}/*`, now.bytes.subarray(firstLine)],
      ["bytes=-7", `bytes ${size - 7}-${size - 1}/*`, now.bytes.subarray(size - 7)],
    ];
    for (const [range, contentRange, bytes] of cases) {
      const r = await results(t, batchId, { range });
      expect([range, r.status, r.headers.get("content-range"), r.headers.get("x-barge-partial")]).toEqual([range, 206, contentRange, "true"]);
      expect(r.bytes.equals(bytes), range).toBe(true);
    }
    // Nothing committed past what the client holds yet.
    const ahead = await results(t, batchId, { range: `bytes=${size}-` });
    expect([ahead.status, ahead.headers.get("content-range"), ahead.bytes.length]).toEqual([416, `bytes */${size}`, 0]);
    partial = now.bytes;
  });

  test("once completed: the output object, byte for byte, with its length and ranges", async () => {
    expect(await startChunk(runDeps(), heldChunk!).done).toBe("completed");
    expect(await claim()).toBeUndefined();
    const claimed = await claimBatchWork(t.ctx.db, { workerId: "finalizer", kinds: ["finalizing"], leaseSeconds: 30, batchId });
    expect(await finalizeBatch({ db: t.ctx.db, s3: t.ctx.s3, bucket: t.ctx.bucket, log: testLog, leaseSeconds: 30, segmentMaxLines: 2 }, claimed!)).toBe("completed");
    const batch = await batchRow(t.ctx, batchId);

    const file = await fetch(`${t.url}/v1/files/${batch.output_file_id}/content`);
    const content = Buffer.from(await file.arrayBuffer());
    const got = await results(t, batchId);
    expect(got.status).toBe(200);
    expect(got.bytes.equals(content)).toBe(true);
    expect(Object.fromEntries(got.headers)).toMatchObject({
      "content-type": "application/x-ndjson",
      "content-disposition": `attachment; filename="${batchId}_results.jsonl"`,
      "content-length": String(content.length),
      "accept-ranges": "bytes",
    });
    expect(got.headers.get("x-barge-partial")).toBeNull();
    expect(parseJsonl(content.toString("utf8")).map((l) => l.custom_id)).toEqual(requests.map((r) => r.custom_id));
    // What was streamed while the batch ran is exactly where the final output starts.
    expect(partial.length).toBeGreaterThan(0);
    expect(content.subarray(0, partial.length).equals(partial)).toBe(true);

    const size = content.length;
    const cases: [string, number, string, Buffer][] = [
      ["bytes=10-29", 206, `bytes 10-29/${size}`, content.subarray(10, 30)],
      ["bytes=100-", 206, `bytes 100-${size - 1}/${size}`, content.subarray(100)],
      ["bytes=-15", 206, `bytes ${size - 15}-${size - 1}/${size}`, content.subarray(size - 15)],
      [`bytes=${size - 1}-${size + 500}`, 206, `bytes ${size - 1}-${size - 1}/${size}`, content.subarray(size - 1)],
    ];
    for (const [range, status, contentRange, bytes] of cases) {
      const r = await results(t, batchId, { range });
      expect([range, r.status, r.headers.get("content-range"), r.headers.get("content-length")]).toEqual([range, status, contentRange, String(bytes.length)]);
      expect(r.bytes.equals(bytes), range).toBe(true);
    }
    // Starting past the end, or ending before its start: nothing of the object can answer it.
    for (const range of [`bytes=${size}-`, "bytes=9-3"]) {
      const r = await results(t, batchId, { range });
      expect([range, r.status, r.headers.get("content-range"), r.bytes.length]).toEqual([range, 416, `bytes */${size}`, 0]);
    }
    // Malformed, another unit, several ranges: ignored, the whole object as RFC 9110 allows.
    for (const range of ["bytes=abc", "items=0-5", "bytes=0-1,10-11"]) {
      const r = await results(t, batchId, { range });
      expect([range, r.status, r.headers.get("content-range"), r.bytes.equals(content)]).toEqual([range, 200, null, true]);
    }
  });

  test("a cancelled batch: the partial results while it cancels, then the published output holding exactly them", async () => {
    const cancelled = (await seedBatch(t.ctx, requests)).batchId;
    const first = await claim();
    expect([first!.batch_id, first!.idx]).toEqual([cancelled, 0]);
    expect(await startChunk(runDeps(), first!).done).toBe("completed");
    const cancel = await fetch(`${t.url}/v1/batches/${cancelled}/cancel`, { method: "POST" });
    expect([cancel.status, ((await cancel.json()) as { status: string }).status]).toEqual([200, "cancelling"]);
    const during = await results(t, cancelled);
    expect([during.status, during.headers.get("x-barge-partial")]).toEqual([200, "true"]);
    expect(parseJsonl(during.bytes.toString("utf8")).map((l) => l.custom_id)).toEqual(requests.slice(0, CHUNK).map((r) => r.custom_id));

    const claimed = await claimBatchWork(t.ctx.db, { workerId: "finalizer", kinds: ["cancelling"], leaseSeconds: 30, batchId: cancelled });
    expect(await finalizeBatch({ db: t.ctx.db, s3: t.ctx.s3, bucket: t.ctx.bucket, log: testLog, leaseSeconds: 30, segmentMaxLines: 2 }, claimed!)).toBe("cancelled");
    const after = await results(t, cancelled);
    expect([after.status, after.headers.get("x-barge-partial"), after.headers.get("content-length")]).toEqual([200, null, String(during.bytes.length)]);
    expect(after.bytes.equals(during.bytes)).toBe(true);
  });

  test("a failed batch has no results, another tenant's batch and unknown ids are not found", async () => {
    const { fileId } = await putInputFile(t.ctx, "{}\n");
    const failed = newId("batch_");
    await insertBatch(t.ctx.db, { id: failed, input_file_id: fileId, status: "failed", failed_at: new Date() });
    const other = newId("batch_");
    await insertBatch(t.ctx.db, { id: other, input_file_id: fileId, tenant: "someone-else", status: "in_progress" });
    const expected: [string, string, string][] = [
      [failed, "not_found", `No batch results found with id '${failed}'.`],
      [other, "not_found", `No batch found with id '${other}'.`],
      ["batch_nope", "not_found", "No batch found with id 'batch_nope'."],
    ];
    for (const [id, code, message] of expected) {
      const r = await results(t, id);
      expect([r.status, JSON.parse(r.bytes.toString()).error]).toEqual([404, { message, type: "invalid_request_error", param: "batch_id", code }]);
    }
    const validating = newId("batch_");
    await insertBatch(t.ctx.db, { id: validating, input_file_id: fileId });
    const empty = await results(t, validating);
    expect([empty.status, empty.headers.get("x-barge-partial"), empty.bytes.length]).toEqual([200, "true", 0]);
  });
});

describe("readConcatenation: segments deleted while they are read", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startBareApi();
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Three segment objects and the object stitched from them, as the finalizer would leave them. */
  async function stored() {
    const texts = ['{"n":0}\n{"n":1}\n', '{"n":2}\n', '{"n":3}\n{"n":4}\n'];
    const prefix = `test/${newId("batch_")}`;
    const segments: SegmentRef[] = [];
    for (const [i, text] of texts.entries()) {
      const key = `${prefix}/seg-${i}`;
      await putObject(t.ctx, key, text);
      segments.push({ key, size: Buffer.byteLength(text) });
    }
    return { texts, segments, outputKey: `${prefix}/output.jsonl` };
  }

  const read = async (gen: AsyncGenerator<Buffer>) => {
    const got: Buffer[] = [];
    for await (const b of gen) got.push(b);
    return Buffer.concat(got).toString("utf8");
  };

  test("the rest comes from the published output once a segment is gone", async () => {
    const { texts, segments, outputKey } = await stored();
    await putObject(t.ctx, outputKey, texts.join("") + '{"n":5}\n');
    await t.ctx.s3.send(new DeleteObjectCommand({ Bucket: t.ctx.bucket, Key: segments[1]!.key }));
    // Only the listed prefix is read from the output, not the lines published after it.
    expect(await read(readConcatenation(t.ctx, segments, outputKey))).toBe(texts.join(""));
  });

  test("a byte window across a deleted segment is finished from the output too", async () => {
    const { texts, segments, outputKey } = await stored();
    const all = texts.join("");
    await putObject(t.ctx, outputKey, all);
    await t.ctx.s3.send(new DeleteObjectCommand({ Bucket: t.ctx.bucket, Key: segments[1]!.key }));
    expect(await read(readConcatenation(t.ctx, segments, outputKey, { start: 3, end: all.length - 2 }))).toBe(all.slice(3, -2));
    expect(await read(readConcatenation(t.ctx, segments, outputKey, { start: 17, end: 20 }))).toBe(all.slice(17, 20));
  });

  test("with the output gone too, the bytes end cleanly at the last whole segment", async () => {
    const { texts, segments, outputKey } = await stored();
    await t.ctx.s3.send(new DeleteObjectCommand({ Bucket: t.ctx.bucket, Key: segments[2]!.key }));
    expect(await read(readConcatenation(t.ctx, segments, outputKey))).toBe(texts[0]! + texts[1]!);
  });
});

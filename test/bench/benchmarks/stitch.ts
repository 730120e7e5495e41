import { setTimeout as sleep } from "node:timers/promises";
import type { Readable } from "node:stream";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { keys, newId } from "@barge/core";
import { simulate } from "@barge/engine-sim";
import { MODEL, atMost, mb, round, scaled, startBenchStack, type BenchStack, type Benchmark, type SimSettings } from "../harness.js";

// Finalizing on a real S3 (Ceph RGW): 200K results (~400 MB, ~2 KB each) lie in segments of
// 1,000 lines, keyed and recorded exactly as an agent commits them (5 segments per 5,000-request
// chunk). A real agent process then finalizes the batch (the batch is flipped to `finalizing`, as
// the last chunk's completion does): multipart stitch, manifest, fenced `completed`, segment
// deletion. Its time to `completed` is compared with one server-side CopyObject of the stitched
// object, the least any server-side assembly of those bytes could cost.

const SIM: SimSettings = { maxNumSeqs: 16, prefillTokensPerSec: 0, decodeTokensPerSec: 0 };
const RESULTS = 200_000;
const SEGMENT_LINES = 1_000;
const CHUNK_SIZE = 5_000;
const RATIO = 2;
const TENANT = "default";

/** One output line as the agent writes it, with a ~1,600-character chat completion (~2 KB a line). */
function resultLine(batchId: string, i: number): string {
  const body = simulate("/v1/chat/completions", { model: MODEL, messages: [{ role: "user", content: `request ${i}` }], max_tokens: 360 + (i % 80) });
  return JSON.stringify({
    id: `batch_req_${batchId.slice(6)}${i.toString(36).padStart(6, "0")}`,
    custom_id: `req-${i}`,
    response: { status_code: 200, request_id: `${batchId}:${i}`, body },
    error: null,
  });
}

interface Segment {
  chunk: number;
  seq: number;
  key: string;
  bytes: number;
  lines: number;
}

/** PUTs every segment (4 at a time) and returns them in order. */
async function putSegments(stack: BenchStack, batchId: string, results: number): Promise<Segment[]> {
  const segments: Segment[] = [];
  for (let start = 0, n = 0; start < results; start += SEGMENT_LINES, n++) {
    const chunk = Math.floor(start / CHUNK_SIZE);
    const seq = Math.floor((start % CHUNK_SIZE) / SEGMENT_LINES);
    segments.push({ chunk, seq, key: keys.segment(batchId, "output", chunk, seq, 1), bytes: 0, lines: Math.min(SEGMENT_LINES, results - start) });
  }
  let next = 0;
  const worker = async () => {
    while (next < segments.length) {
      const s = segments[next++] as Segment;
      const first = s.chunk * CHUNK_SIZE + s.seq * SEGMENT_LINES;
      const lines: string[] = [];
      for (let i = first; i < first + s.lines; i++) lines.push(resultLine(batchId, i));
      const body = Buffer.from(`${lines.join("\n")}\n`);
      s.bytes = body.length;
      await stack.s3.send(new PutObjectCommand({ Bucket: stack.bucket, Key: s.key, Body: body }));
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return segments;
}

/** The rows an agent leaves behind once every chunk is done: file, batch (still in_progress), chunks, segments. */
async function seedRows(stack: BenchStack, batchId: string, results: number, segments: Segment[]): Promise<void> {
  const fileId = newId("file-");
  await stack.db
    .insertInto("files")
    .values({ id: fileId, tenant: TENANT, purpose: "batch", filename: "input.jsonl", bytes: 0, status: "processed", s3_key: keys.input(TENANT, fileId) })
    .execute();
  const now = new Date();
  await stack.db
    .insertInto("batches")
    .values({
      id: batchId,
      tenant: TENANT,
      status: "in_progress",
      endpoint: "/v1/chat/completions",
      model: MODEL,
      input_file_id: fileId,
      completion_window: "24h",
      metadata: JSON.stringify(null),
      errors: JSON.stringify(null),
      stitch_state: JSON.stringify(null),
      total_requests: results,
      in_progress_at: now,
      expires_at: new Date(now.getTime() + 24 * 3600 * 1000),
    })
    .execute();
  const chunks = Math.ceil(results / CHUNK_SIZE);
  await stack.db
    .insertInto("chunks")
    .values(
      Array.from({ length: chunks }, (_, idx) => {
        const count = Math.min(CHUNK_SIZE, results - idx * CHUNK_SIZE);
        return {
          batch_id: batchId,
          idx,
          model: MODEL,
          priority: 0,
          batch_created_at: now,
          request_start: idx * CHUNK_SIZE,
          request_count: count,
          start_line: idx * CHUNK_SIZE + 1,
          start_offset: 0,
          end_offset: 0,
          status: "done",
          fence: 1,
          committed: count,
          next_offset: 0,
          next_line: idx * CHUNK_SIZE + count + 1,
          next_seq: Math.ceil(count / SEGMENT_LINES),
          completed: count,
          done_at: now,
        };
      }),
    )
    .execute();
  for (let i = 0; i < segments.length; i += 500) {
    await stack.db
      .insertInto("segments")
      .values(segments.slice(i, i + 500).map((s) => ({ batch_id: batchId, chunk_idx: s.chunk, seq: s.seq, kind: "output" as const, s3_key: s.key, bytes: s.bytes, lines: s.lines })))
      .execute();
  }
}

async function copyObject(stack: BenchStack, from: string, to: string): Promise<number> {
  const t0 = performance.now();
  await stack.s3.send(new CopyObjectCommand({ Bucket: stack.bucket, Key: to, CopySource: `${stack.bucket}/${from}` }));
  return (performance.now() - t0) / 1000;
}

/** Context, not the target: the same bytes streamed through this process, GET into a single PUT. */
async function getPut(stack: BenchStack, from: string, to: string, bytes: number): Promise<number> {
  const t0 = performance.now();
  const res = await stack.s3.send(new GetObjectCommand({ Bucket: stack.bucket, Key: from }));
  await stack.s3.send(new PutObjectCommand({ Bucket: stack.bucket, Key: to, Body: res.Body as Readable, ContentLength: bytes }));
  return (performance.now() - t0) / 1000;
}

/** Context: the same bytes copied server-side part by part (UploadPartCopy, 4 parts at once), as the stitcher does for large segments. */
async function partCopy(stack: BenchStack, from: string, to: string, bytes: number): Promise<number> {
  const t0 = performance.now();
  const { UploadId } = await stack.s3.send(new CreateMultipartUploadCommand({ Bucket: stack.bucket, Key: to }));
  const partBytes = Math.max(5 * 1024 * 1024, Math.ceil(bytes / 8));
  const ranges: [number, number][] = [];
  for (let start = 0; start < bytes; start += partBytes) ranges.push([start, Math.min(bytes, start + partBytes) - 1]);
  const parts = await Promise.all(
    ranges.map(async ([start, end], i) => {
      const res = await stack.s3.send(
        new UploadPartCopyCommand({ Bucket: stack.bucket, Key: to, UploadId, PartNumber: i + 1, CopySource: `${stack.bucket}/${from}`, CopySourceRange: `bytes=${start}-${end}` }),
      );
      const etag = res.CopyPartResult?.ETag ?? "";
      return { PartNumber: i + 1, ETag: etag.startsWith('"') ? etag : `"${etag}"` };
    }),
  );
  await stack.s3.send(new CompleteMultipartUploadCommand({ Bucket: stack.bucket, Key: to, UploadId, MultipartUpload: { Parts: parts } }));
  return (performance.now() - t0) / 1000;
}

export const stitch: Benchmark = {
  name: "stitch",
  title: "finalizing 200K results (~400 MB) on Ceph RGW against one server-side CopyObject",
  async run(ctx) {
    const results = scaled(ctx.opts, RESULTS, 2_000);
    const env = { AGENT_POLL_MS: "50" };
    Object.assign(ctx.config, { results, segment_lines: SEGMENT_LINES, chunk_size: CHUNK_SIZE, s3: "Ceph RGW (infra/rgw/rgw.sh, memstore OSD)", agent_env: env });
    const stack = await startBenchStack({ bench: ctx.name, opts: ctx.opts, scope: ctx.scope, workDir: ctx.workDir, sim: SIM, s3: "rgw", env });
    const batchId = newId("batch_");
    const tPut = performance.now();
    const segments = await putSegments(stack, batchId, results);
    const total = segments.reduce((a, s) => a + s.bytes, 0);
    Object.assign(ctx.figures, { segments: segments.length, bytes: total, mb: mb(total), segment_put_s: round((performance.now() - tPut) / 1000, 1) });
    ctx.log(`${segments.length} segments, ${mb(total)} MB on RGW`);
    await seedRows(stack, batchId, results, segments);

    const agent = await stack.startAgent();
    const cpu0 = agent.usage()?.cpuSeconds ?? 0;
    const t0 = Date.now();
    await stack.db.updateTable("batches").set({ status: "finalizing", finalizing_at: new Date(t0) }).where("id", "=", batchId).execute();
    const deadline = t0 + 10 * 60_000;
    let row: { status: string; completed_at: Date | null; output_key: string | null } | undefined;
    while (Date.now() < deadline) {
      row = await stack.db.selectFrom("batches").select(["status", "completed_at", "output_key"]).where("id", "=", batchId).executeTakeFirst();
      if (row && row.status !== "finalizing") break;
      await sleep(50);
    }
    if (!row || row.status !== "completed" || !row.completed_at || !row.output_key) throw new Error(`finalizing ended ${row?.status ?? "unknown"}; see ${agent.logFile}`);
    const finalizeS = (row.completed_at.getTime() - t0) / 1000;
    const cpu1 = agent.usage()?.cpuSeconds ?? 0;
    let cleanupS: number | null = null;
    while (Date.now() < deadline) {
      const left = await stack.db.selectFrom("segments").select((eb) => eb.fn.countAll<number>().as("n")).where("batch_id", "=", batchId).executeTakeFirstOrThrow();
      if (Number(left.n) === 0) {
        cleanupS = (Date.now() - t0) / 1000;
        break;
      }
      await sleep(50);
    }
    const head = await stack.s3.send(new HeadObjectCommand({ Bucket: stack.bucket, Key: row.output_key }));
    if (head.ContentLength !== total) throw new Error(`stitched object has ${head.ContentLength} bytes, expected ${total}`);
    ctx.log(`finalized in ${finalizeS.toFixed(2)} s`);

    const copies = [await copyObject(stack, row.output_key, "bench/copy-1.jsonl"), await copyObject(stack, row.output_key, "bench/copy-2.jsonl")];
    const copyS = copies[0] as number;
    const streamed = await getPut(stack, row.output_key, "bench/get-put.jsonl", total);
    const partCopied = await partCopy(stack, row.output_key, "bench/part-copy.jsonl", total);
    const ratio = finalizeS / copyS;
    Object.assign(ctx.figures, {
      finalize_to_completed_s: round(finalizeS, 2),
      finalize_incl_segment_deletion_s: cleanupS === null ? null : round(cleanupS, 2),
      finalize_mb_per_s: round(total / 1e6 / finalizeS, 0),
      agent_cpu_s_finalizing: round(cpu1 - cpu0, 2),
      agent_peak_rss_mb: mb(agent.usage()?.peakRss ?? 0),
      copy_object_s: copies.map((c) => round(c, 3)),
      copy_object_mb_per_s: round(total / 1e6 / copyS, 0),
      finalize_over_copy_object: round(ratio, 2),
      context_client_get_then_put_s: round(streamed, 2),
      finalize_over_client_get_then_put: round(finalizeS / streamed, 2),
      context_upload_part_copy_8_parts_s: round(partCopied, 2),
    });
    if (copyS * 5 < streamed) {
      ctx.notes.push(
        `CopyObject moved ${mb(total)} MB in ${copyS.toFixed(3)} s (${Math.round(total / 1e6 / copyS)} MB/s), over 5x faster than streaming the bytes once: ` +
          "the server copied by reference (RGW shares the source's RADOS tail objects within one placement), so no data moved",
      );
    }
    return [atMost("finalize time / one CopyObject of the same bytes", round(ratio, 2), RATIO)];
  },
};

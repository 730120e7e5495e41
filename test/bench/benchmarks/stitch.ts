import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { CopyObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { BENCH_LIMITS, atMost, mb, round, runBatch, scaled, startBenchStack, writeChatJsonl, type BenchStack, type Benchmark, type SimSettings } from "../harness.js";

// What a user waits for at the end of a batch, on a real S3 (Ceph RGW): 200K requests with ~2 KB
// results (~400 MB of output) run through the whole pipeline (API, one agent, zero-latency
// engine-sim). Each completed chunk's output is uploaded during the run as one part of the
// batch's output object, so `finalizing` -> `completed` should only complete that upload. It is
// compared with one server-side CopyObject of the finished object, the least any server-side
// assembly of those bytes could cost. The bytes moved earlier are reported as the run's cost.

const SIM: SimSettings = { maxNumSeqs: 256, prefillTokensPerSec: 0, decodeTokensPerSec: 0 };
const REQUESTS = 200_000;
const RATIO = 2;

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

/** The agent's JSON log lines with a given message. */
function logLines(file: string, msg: string): Record<string, unknown>[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.includes(`"msg":"${msg}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export const stitch: Benchmark = {
  name: "stitch",
  title: "finalizing a 200K-result (~400 MB) batch on Ceph RGW against one server-side CopyObject",
  async run(ctx) {
    const requests = scaled(ctx.opts, REQUESTS, 2_000);
    const env = { ...BENCH_LIMITS, AGENT_POLL_MS: "50", API_POLL_MS: "50" };
    Object.assign(ctx.config, { requests, sim: SIM, s3: "Ceph RGW (infra/rgw/rgw.sh, memstore OSD)", agent_env: { ...env, rest: "defaults (CHUNK_SIZE 5000, SEGMENT_MAX_LINES 1000)" } });
    const stack = await startBenchStack({ bench: ctx.name, opts: ctx.opts, scope: ctx.scope, workDir: ctx.workDir, sim: SIM, s3: "rgw", env });
    // ~400 generated tokens make a ~2 KB result line.
    const input = await writeChatJsonl(join(ctx.workDir, "input.jsonl"), requests, { promptChars: [60, 200], maxTokens: [360, 440] });
    ctx.figures.input_bytes = input.bytes;
    const api = await stack.startApi();
    const agent = await stack.startAgent();
    const run = await runBatch(api.url, stack.db, input.path, { timeoutMs: Math.max(180_000, requests * 5), log: ctx.log });
    if (run.final.status !== "completed") throw new Error(`the batch ended ${run.final.status}; see ${agent.logFile}`);
    const row = await stack.db.selectFrom("batches").select(["output_key"]).where("id", "=", run.batchId).executeTakeFirstOrThrow();
    const outputKey = row.output_key as string;
    const head = await stack.s3.send(new HeadObjectCommand({ Bucket: stack.bucket, Key: outputKey }));
    const total = head.ContentLength ?? 0;
    const finalizeS = run.phases.finalize_s as number;
    const runS = run.phases.run_s as number;

    // Segment deletion follows the publish; it is not part of what the user waits for.
    let cleanupS: number | null = null;
    for (const deadline = Date.now() + 5 * 60_000; Date.now() < deadline; await sleep(50)) {
      const left = await stack.db.selectFrom("segments").select((eb) => eb.fn.countAll<number>().as("n")).where("batch_id", "=", run.batchId).executeTakeFirstOrThrow();
      if (Number(left.n) === 0) {
        cleanupS = (Date.now() - (run.timeline.finalizing as number)) / 1000;
        break;
      }
    }

    const parts = logLines(agent.logFile, "uploaded chunk part");
    const partBytes = parts.reduce((n, l) => n + Number(l.bytes), 0);
    const partMs = parts.reduce((n, l) => n + Number(l.ms), 0);
    // The last chunk's part is uploaded before the batch turns finalizing: outside the target's window, but waited for.
    const lastPart = parts.find((l) => l.last === true);
    const assembled = logLines(agent.logFile, "output completed from chunk parts")[0];
    const fellBack = logLines(agent.logFile, "stitching the output from its segments")[0];
    ctx.log(`finalized in ${finalizeS.toFixed(3)} s (${assembled ? `from ${String(assembled.parts)} chunk parts` : `stitched: ${String(fellBack?.reason)}`})`);

    const copies = [await copyObject(stack, outputKey, "bench/copy-1.jsonl"), await copyObject(stack, outputKey, "bench/copy-2.jsonl")];
    const copyS = copies[0] as number;
    const streamed = await getPut(stack, outputKey, "bench/get-put.jsonl", total);
    const ratio = finalizeS / copyS;
    Object.assign(ctx.figures, {
      batch_status: run.final.status,
      request_counts: run.final.request_counts,
      phases: run.phases,
      output_bytes: total,
      output_mb: mb(total),
      finalize_path: assembled ? "chunk parts" : "stitch",
      finalize_parts: assembled ? assembled.parts : null,
      finalize_parts_rebuilt: assembled ? assembled.rebuilt : null,
      finalize_fallback_reason: fellBack ? fellBack.reason : null,
      finalize_to_completed_s: round(finalizeS, 3),
      finalize_incl_segment_deletion_s: cleanupS === null ? null : round(cleanupS, 2),
      copy_object_s: copies.map((c) => round(c, 3)),
      finalize_over_copy_object: round(ratio, 2),
      context_client_get_then_put_s: round(streamed, 2),
      finalize_over_client_get_then_put: round(finalizeS / streamed, 3),
      // The cost moved into the run: the agent uploads each chunk's output while it runs the next chunk.
      run_requests_per_s: round(requests / runS, 0),
      chunk_parts_uploaded_during_run: parts.length,
      chunk_part_mb_uploaded_during_run: mb(partBytes),
      chunk_part_upload_s_total: round(partMs / 1000, 2),
      chunk_part_upload_share_of_run: round(partMs / 1000 / runS, 3),
      chunk_part_upload_mb_per_s: partMs > 0 ? round(partBytes / 1e6 / (partMs / 1000), 0) : null,
      last_chunk_part_upload_s: lastPart ? round(Number(lastPart.ms) / 1000, 3) : null,
      last_result_to_completed_s: lastPart ? round(Number(lastPart.ms) / 1000 + finalizeS, 3) : null,
      agent_cpu_s_total: round(agent.usage()?.cpuSeconds ?? 0, 2),
      agent_peak_rss_mb: mb(agent.usage()?.peakRss ?? 0),
    });
    ctx.notes.push(
      "last_chunk_part_upload_s is waited for between the last committed result and `finalizing` (the last chunk's bytes have to move once computed); last_result_to_completed_s adds it to the finalize time",
    );
    ctx.notes.push(
      "no run without chunk parts here to compare req/s with (there is no switch to turn them off); the overhead benchmark (s3rver) is the pipeline's rate reference",
    );
    ctx.notes.push(
      "chunk_part_upload_s_total sums each part's upload time in the agent; uploads run in the background of the next chunk (only the last chunk's is waited for), so their cost to the run's wall time is below that sum",
    );
    if (copyS * 5 < streamed) {
      ctx.notes.push(
        `CopyObject moved ${mb(total)} MB in ${copyS.toFixed(3)} s (${Math.round(total / 1e6 / copyS)} MB/s), over 5x faster than streaming the bytes once: ` +
          "the server copied by reference (RGW shares the source's RADOS tail objects within one placement), so no data moved",
      );
    }
    return [atMost("finalize time (finalizing -> completed) / one CopyObject of the same bytes", round(ratio, 2), RATIO)];
  },
};

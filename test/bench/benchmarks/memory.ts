import { createReadStream, createWriteStream, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { once } from "node:events";
import { DEFAULT_MAX_LINE_BYTES, LineTooLarge, readLineBlocks, readLines, validateBatchInput } from "@barge/core";
import {
  BENCH_LIMITS,
  UsageSampler,
  downloadResults,
  atMost,
  below,
  mb,
  round,
  runBatch,
  scaled,
  startBenchStack,
  writeChatJsonl,
  type Benchmark,
  type SimSettings,
  type Target,
} from "../harness.js";

// Bounded memory: the agent and the API, each a fresh process per batch size, run a 10K, a 200K
// and a 1M-request batch through the whole pipeline (presigned upload, the API's two validation
// passes, every chunk, stitching, then a download of the output through /results). Their peak
// RSS (VmHWM) must not grow with the batch.
// First, in this process: lines near MAX_LINE_BYTES (20 of 15 MiB) and one of 40 MiB past it go
// through validation's reader and the agent's; the peak RSS each adds must stay within a
// multiple of the limit, whatever the file's size.

const SIM: SimSettings = { maxNumSeqs: 256, prefillTokensPerSec: 0, decodeTokensPerSec: 0 };
const SIZES = [10_000, 200_000, 1_000_000];
const LIMIT_MB = 200;
const GROWTH = 1.2;
const LONG_LINES = 20;
const LONG_LINE_BYTES = 15 * 1024 * 1024;
const OVERSIZED_LINE_BYTES = 40 * 1024 * 1024;
/**
 * Peak RSS a reader may add, as a multiple of MAX_LINE_BYTES. The agent's reader holds a long
 * line up to four times at once (its pieces, their copy, its text, the parsed body), and the line
 * before it may still wait for a major GC.
 */
const LINE_MEMORY_MULTIPLE = 12;

export const memory: Benchmark = {
  name: "memory",
  title: "agent and API peak RSS on 10K, 200K and 1M-request batches",
  async run(ctx) {
    const lineTargets = await longLines(ctx.workDir, ctx.figures, ctx.log);
    const sizes = SIZES.map((n, i) => scaled(ctx.opts, n, [500, 2_000, 10_000][i]));
    Object.assign(ctx.config, { sizes, sim: SIM, env: BENCH_LIMITS, agent_env: "defaults" });
    const stack = await startBenchStack({ bench: ctx.name, opts: ctx.opts, scope: ctx.scope, workDir: ctx.workDir, sim: SIM, env: BENCH_LIMITS });
    const runs: Record<string, unknown>[] = [];
    ctx.figures.runs = runs;
    for (const n of sizes) {
      const label = n >= 1_000_000 ? `${n / 1_000_000}m` : `${Math.round(n / 1000)}k`;
      const path = join(ctx.workDir, `input-${label}.jsonl`);
      const input = await writeChatJsonl(path, n, { promptChars: [50, 200], maxTokens: [8, 24] });
      const api = await stack.startApi(`api-${label}`);
      const agent = await stack.startAgent(`agent-${label}`);
      const sampler = new UsageSampler([api.service, agent], 250);
      ctx.log(`${n} requests (${(input.bytes / 1e6).toFixed(0)} MB)`);
      const run = await runBatch(api.url, stack.db, path, { timeoutMs: Math.max(120_000, n * 3), log: ctx.log });
      // The API's peak covers a download of the whole output through /results, streamed from S3.
      const results = run.final.status === "completed" ? await downloadResults(api.url, run.batchId) : undefined;
      if (results && results.bytes !== results.contentLength) ctx.notes.push(`/results of the ${n}-request batch streamed ${results.bytes} of ${results.contentLength} bytes`);
      sampler.stop();
      const agentUsage = agent.usage();
      const apiUsage = api.service.usage();
      await ctx.scope.stopOne(agent.name);
      await ctx.scope.stopOne(api.service.name);
      rmSync(path, { force: true });
      runs.push({
        requests: n,
        input_bytes: input.bytes,
        status: run.final.status,
        results_bytes: results?.bytes ?? null,
        request_counts: run.final.request_counts,
        phases: run.phases,
        agent_peak_rss_mb: mb(agentUsage?.peakRss ?? 0),
        api_peak_rss_mb: mb(apiUsage?.peakRss ?? 0),
        agent_cpu_s: round(agentUsage?.cpuSeconds ?? 0, 1),
        api_cpu_s: round(apiUsage?.cpuSeconds ?? 0, 1),
        rss_samples: sampler.summary(),
      });
      ctx.log(`${label}: ${run.final.status}, agent peak ${mb(agentUsage?.peakRss ?? 0)} MB, api peak ${mb(apiUsage?.peakRss ?? 0)} MB`);
      if (run.timedOut || run.final.status !== "completed") {
        ctx.notes.push(`the ${label} batch ended ${run.final.status}${run.timedOut ? " (deadline)" : ""}`);
        break;
      }
    }
    type Run = { requests: number; agent_peak_rss_mb: number; api_peak_rss_mb: number };
    const done = runs as unknown as Run[];
    const first = done[0];
    const last = done.length === sizes.length ? done[done.length - 1] : undefined;
    const growth = (k: "agent_peak_rss_mb" | "api_peak_rss_mb") => (first && last ? round(last[k] / first[k], 3) : null);
    const peak = (k: "agent_peak_rss_mb" | "api_peak_rss_mb") => (done.length === sizes.length ? Math.max(...done.map((r) => r[k])) : null);
    Object.assign(ctx.figures, {
      agent_growth_largest_over_smallest: growth("agent_peak_rss_mb"),
      api_growth_largest_over_smallest: growth("api_peak_rss_mb"),
      agent_peak_rss_mb_max: peak("agent_peak_rss_mb"),
      api_peak_rss_mb_max: peak("api_peak_rss_mb"),
    });
    return [
      ...lineTargets,
      atMost("agent peak RSS, largest batch / smallest", growth("agent_peak_rss_mb"), GROWTH),
      atMost("API peak RSS, largest batch / smallest", growth("api_peak_rss_mb"), GROWTH),
      below("agent peak RSS, any batch", peak("agent_peak_rss_mb"), LIMIT_MB, "MB"),
      below("API peak RSS, any batch", peak("api_peak_rss_mb"), LIMIT_MB, "MB"),
    ];
  },
};

/** Writes a request line whose content makes it `bytes` long, without holding it. */
async function writeLongLine(out: NodeJS.WritableStream, customId: string, bytes: number): Promise<void> {
  const head = `{"custom_id":"${customId}","method":"POST","url":"/v1/chat/completions","body":{"model":"barge-sim-1","messages":[{"role":"user","content":"`;
  const tail = '"}],"max_tokens":8}}\n';
  const piece = Buffer.alloc(1024 * 1024, 0x78);
  if (!out.write(head)) await once(out, "drain");
  for (let left = bytes - head.length - tail.length; left > 0; left -= piece.length) {
    if (!out.write(left >= piece.length ? piece : piece.subarray(0, left))) await once(out, "drain");
  }
  if (!out.write(tail)) await once(out, "drain");
}

/** This process's peak RSS since the last `resetPeak`, in bytes. */
function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return Number(m?.[1] ?? 0) * 1024;
}

/** Resets VmHWM to the current RSS (Linux: writing 5 to clear_refs). */
function resetPeak(): number {
  writeFileSync("/proc/self/clear_refs", "5");
  return process.memoryUsage().rss;
}

/** The case of lines near and past the limit: what validation's and the agent's readers add to the peak RSS. */
async function longLines(workDir: string, figures: Record<string, unknown>, log: (m: string) => void): Promise<Target[]> {
  const limit = DEFAULT_MAX_LINE_BYTES;
  const path = join(workDir, "long-lines.jsonl");
  const out = createWriteStream(path);
  for (let i = 0; i < LONG_LINES; i++) {
    await writeLongLine(out, `long-${i}`, LONG_LINE_BYTES);
    if (i === LONG_LINES / 2) await writeLongLine(out, "oversized", OVERSIZED_LINE_BYTES);
  }
  out.end();
  await once(out, "finish");
  const bytes = LONG_LINES * LONG_LINE_BYTES + OVERSIZED_LINE_BYTES;
  const open = (start = 0) => createReadStream(path, { start, highWaterMark: 64 * 1024 });

  let base = resetPeak();
  const result = await validateBatchInput(readLineBlocks(open(), { maxLineBytes: limit }), bytes, "/v1/chat/completions", {
    chunkSize: 1000,
    maxRequests: 1000,
    maxBytes: bytes,
    maxLineBytes: limit,
  });
  const validationGrowth = peakRss() - base;

  // The agent's reader: lines as text, each parsed, and an oversized one skipped from its start.
  base = resetPeak();
  let parsed = 0;
  let skipped = 0;
  let pos = { offset: 0, lineNo: 1 };
  while (pos.offset < bytes) {
    try {
      for await (const line of readLines(open(pos.offset), pos, { maxLineBytes: limit })) {
        JSON.parse(line.text);
        parsed++;
        pos = { offset: line.end, lineNo: line.lineNo + 1 };
      }
    } catch (err) {
      if (!(err instanceof LineTooLarge)) throw err;
      for await (const block of readLineBlocks(open(err.offset), { maxLineBytes: limit })) {
        pos = { offset: err.offset + (block.oversizedLineBytes ?? block.bytes.length), lineNo: err.lineNo + 1 };
        skipped++;
        break;
      }
    }
  }
  const agentGrowth = peakRss() - base;
  rmSync(path, { force: true });

  const multiple = (growth: number) => round(growth / limit, 2);
  figures.long_lines = {
    lines: LONG_LINES,
    line_bytes: LONG_LINE_BYTES,
    oversized_line_bytes: OVERSIZED_LINE_BYTES,
    max_line_bytes: limit,
    validation_errors: result.errors.map((e) => `${e.code}@${e.line}`),
    validation_peak_rss_growth_mb: mb(validationGrowth),
    agent_reader_lines_parsed: parsed,
    agent_reader_lines_skipped: skipped,
    agent_reader_peak_rss_growth_mb: mb(agentGrowth),
  };
  log(`long lines: validation +${mb(validationGrowth)} MB, agent reader +${mb(agentGrowth)} MB peak RSS (${parsed} parsed, ${skipped} skipped)`);
  return [
    atMost("validation peak RSS growth on long lines / MAX_LINE_BYTES", multiple(validationGrowth), LINE_MEMORY_MULTIPLE),
    atMost("agent reader peak RSS growth on long lines / MAX_LINE_BYTES", multiple(agentGrowth), LINE_MEMORY_MULTIPLE),
  ];
}

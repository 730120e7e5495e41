import { join } from "node:path";
import autocannon from "autocannon";
import {
  BENCH_LIMITS,
  atLeast,
  below,
  cancelBatch,
  createBatch,
  getBatch,
  round,
  scaled,
  startBenchStack,
  uploadPresigned,
  waitForBatch,
  writeChatJsonl,
  type Benchmark,
  type SimSettings,
} from "../harness.js";

// Status polling under load: while two batches run (the agent feeding a 256-slot sim at about
// 250 req/s and committing segments), autocannon hammers GET /v1/batches/{id} of the running one
// with 10 keep-alive connections (autocannon's default) for 20 s, after a 3 s warm-up.

const SIM: SimSettings = { maxNumSeqs: 256, prefillTokensPerSec: 10_000, decodeTokensPerSec: 100 };
const CONNECTIONS = 10;
const DURATION_S = 20;
const WARMUP_S = 3;

function cannon(url: string, duration: number): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ url, connections: CONNECTIONS, duration, pipelining: 1, timeout: 10 }, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

export const poll: Benchmark = {
  name: "poll",
  title: "GET /v1/batches/{id} throughput and latency while batches run",
  async run(ctx) {
    const perBatch = scaled(ctx.opts, 20_000, 5_000);
    const duration = ctx.opts.quick ? 5 : DURATION_S;
    const env = { ...BENCH_LIMITS, AGENT_CONCURRENCY: String(2 * SIM.maxNumSeqs) };
    Object.assign(ctx.config, { batches: 2, requests_per_batch: perBatch, sim: SIM, env, tool: "autocannon 9", connections: CONNECTIONS, duration_s: duration, warmup_s: WARMUP_S });
    const stack = await startBenchStack({ bench: ctx.name, opts: ctx.opts, scope: ctx.scope, workDir: ctx.workDir, sim: SIM, env });
    const api = await stack.startApi();
    await stack.startAgent();
    const ids: string[] = [];
    for (const k of [0, 1]) {
      const input = await writeChatJsonl(join(ctx.workDir, `input-${k}.jsonl`), perBatch, {
        promptChars: [150, 350],
        maxTokens: [80, 120],
        system: "You are a concise assistant.",
        seed: k + 1,
      });
      const upload = await uploadPresigned(api.url, input.path);
      ids.push((await createBatch(api.url, upload.fileId)).id);
    }
    const target = ids[0] as string;
    // Polled while something is committed, so every answer carries live progress.
    await waitForBatch(api.url, target, { timeoutMs: 120_000, intervalMs: 250, done: (b) => b.status !== "validating" && b.request_counts.completed > 0 });
    const url = `${api.url}/v1/batches/${target}`;
    await cannon(url, WARMUP_S);
    const before = await getBatch(api.url, target);
    const cpu0 = api.service.usage()?.cpuSeconds ?? 0;
    ctx.log(`polling ${target} for ${duration} s (${before.status}, ${before.request_counts.completed} done)`);
    const r = await cannon(url, duration);
    const cpu1 = api.service.usage()?.cpuSeconds ?? 0;
    const after = await getBatch(api.url, target);
    const rps = r["2xx"] / r.duration;
    const p99 = r.latency.p99;
    Object.assign(ctx.figures, {
      requests_per_s: round(rps, 0),
      latency_ms: { mean: r.latency.average, p50: r.latency.p50, p90: r.latency.p90, p99, max: r.latency.max },
      responses_2xx: r["2xx"],
      non_2xx: r.non2xx,
      errors: r.errors,
      timeouts: r.timeouts,
      api_cpu_utilisation: round((cpu1 - cpu0) / r.duration, 2),
      batch_status_during: `${before.status} -> ${after.status}`,
      agent_req_per_s_during_poll: round((after.request_counts.completed - before.request_counts.completed) / r.duration, 0),
    });
    if (after.status !== "in_progress") ctx.notes.push(`the polled batch was ${after.status} at the end of the window, not in_progress`);
    if (r.non2xx > 0 || r.errors > 0) ctx.notes.push(`${r.non2xx} non-2xx answers and ${r.errors} errors during the run`);
    for (const id of ids) await cancelBatch(api.url, id).catch(() => undefined);
    return [
      atLeast("GET /v1/batches/{id} requests per second", round(rps, 0), 2000, "req/s"),
      below("GET /v1/batches/{id} p99 latency", p99, 20, "ms"),
    ];
  },
};

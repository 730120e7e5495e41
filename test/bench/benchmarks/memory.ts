import { rmSync } from "node:fs";
import { join } from "node:path";
import {
  BENCH_LIMITS,
  UsageSampler,
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
} from "../harness.js";

// Bounded memory: the agent and the API, each a fresh process per batch size, run a 10K, a 200K
// and a 1M-request batch through the whole pipeline (presigned upload, the API's two validation
// passes, every chunk, stitching). Their peak RSS (VmHWM) must not grow with the batch.

const SIM: SimSettings = { maxNumSeqs: 256, prefillTokensPerSec: 0, decodeTokensPerSec: 0 };
const SIZES = [10_000, 200_000, 1_000_000];
const LIMIT_MB = 200;
const GROWTH = 1.2;

export const memory: Benchmark = {
  name: "memory",
  title: "agent and API peak RSS on 10K, 200K and 1M-request batches",
  async run(ctx) {
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
      atMost("agent peak RSS, largest batch / smallest", growth("agent_peak_rss_mb"), GROWTH),
      atMost("API peak RSS, largest batch / smallest", growth("api_peak_rss_mb"), GROWTH),
      below("agent peak RSS, any batch", peak("agent_peak_rss_mb"), LIMIT_MB, "MB"),
      below("API peak RSS, any batch", peak("api_peak_rss_mb"), LIMIT_MB, "MB"),
    ];
  },
};

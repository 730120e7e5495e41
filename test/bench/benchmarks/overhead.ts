import { join } from "node:path";
import {
  BENCH_LIMITS,
  atLeast,
  round,
  runBatch,
  scaled,
  simStats,
  startBenchStack,
  writeChatJsonl,
  type Benchmark,
  type SimSettings,
} from "../harness.js";

// The agent's own cost per request: with a zero-latency engine every request completes as soon
// as it arrives, so the agent's rate (S3 range read, engine round trip, reorder, segment PUTs,
// fenced checkpoints) is the pipeline's ceiling per GPU node.

const SIM: SimSettings = { maxNumSeqs: 256, prefillTokensPerSec: 0, decodeTokensPerSec: 0 };

export const overhead: Benchmark = {
  name: "overhead",
  title: "agent end-to-end requests/s against a zero-latency engine-sim",
  async run(ctx) {
    const requests = scaled(ctx.opts, 100_000, 500);
    Object.assign(ctx.config, { requests, sim: SIM, agent_env: "defaults (AGENT_CONCURRENCY 64, AGENT_MAX_CONCURRENCY 1024, SEGMENT_MAX_LINES 1000, CHUNK_SIZE 5000)" });
    const stack = await startBenchStack({ bench: ctx.name, opts: ctx.opts, scope: ctx.scope, workDir: ctx.workDir, sim: SIM, env: BENCH_LIMITS });
    const input = await writeChatJsonl(join(ctx.workDir, "input.jsonl"), requests, {
      promptChars: [100, 400],
      maxTokens: [16, 32],
      system: "You are a concise assistant.",
    });
    ctx.figures.input_bytes = input.bytes;
    const api = await stack.startApi();
    const agent = await stack.startAgent();
    const cpuBefore = agent.usage()?.cpuSeconds ?? 0;
    let cpuAtFinalizing: number | undefined;
    const run = await runBatch(api.url, stack.db, input.path, {
      timeoutMs: Math.max(120_000, requests * 5),
      log: ctx.log,
      // The agent's CPU up to the last chunk's completion (polled each 500 ms), before stitching.
      onPoll: (b) => {
        if (cpuAtFinalizing === undefined && b.status !== "in_progress" && b.status !== "validating") cpuAtFinalizing = agent.usage()?.cpuSeconds;
      },
    });
    const cpuAfter = agent.usage()?.cpuSeconds ?? 0;
    const stats = await simStats(stack.simUrl);
    const runSeconds = run.phases.run_s;
    const rps = runSeconds && run.final.status === "completed" ? requests / runSeconds : null;
    const agentCpu = (cpuAtFinalizing ?? cpuAfter) - cpuBefore;
    Object.assign(ctx.figures, {
      batch_status: run.final.status,
      request_counts: run.final.request_counts,
      phases: run.phases,
      agent_requests_per_s: rps === null ? null : round(rps, 0),
      agent_requests_per_s_incl_finalize:
        run.phases.run_s !== null && run.phases.finalize_s !== null ? round(requests / (run.phases.run_s + run.phases.finalize_s), 0) : null,
      agent_cpu_s_during_run: round(agentCpu, 2),
      agent_cpu_utilisation_during_run: runSeconds ? round(agentCpu / runSeconds, 2) : null,
      agent_cpu_ms_per_request: round((agentCpu * 1000) / requests, 3),
      requests_per_agent_cpu_s: agentCpu > 0 ? round(requests / agentCpu, 0) : null,
      sim_completed: stats.counters.completed,
    });
    if (run.timedOut) ctx.notes.push(`the batch was still ${run.final.status} at the deadline`);
    return [atLeast("agent end-to-end requests per second (in_progress -> finalizing)", rps === null ? null : round(rps, 0), 3000, "req/s")];
  },
};

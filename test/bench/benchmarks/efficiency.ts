import { join } from "node:path";
import {
  BENCH_LIMITS,
  SimSampler,
  UsageSampler,
  atLeast,
  idealMakespanSeconds,
  mb,
  occupancy,
  round,
  runBatch,
  scaled,
  serviceSeconds,
  simStats,
  startBenchStack,
  writeChatJsonl,
  type Benchmark,
  type SimSettings,
} from "../harness.js";

// How close the pipeline gets to the GPU's own limit. engine-sim plays a fast GPU (256 slots,
// ~1,000 req/s for this workload); the sim's minimum time for the workload is its total service
// demand over its slots (every slot busy from the first request to the last). The pipeline's wall
// time, from batch creation to `completed` (validation, every chunk, stitching), is compared
// with it, as is the engine's active window and its idle-slot fraction.

const SIM: SimSettings = { maxNumSeqs: 256, prefillTokensPerSec: 10_000, decodeTokensPerSec: 100 };

export const efficiency: Benchmark = {
  name: "efficiency",
  title: "pipeline wall time against the sim's minimum time at full occupancy",
  async run(ctx) {
    const requests = scaled(ctx.opts, 200_000, 2_000);
    // The agent runs on its defaults: it starts at AGENT_CONCURRENCY 64 and its adaptive limit
    // finds the engine's 256 slots by itself, as it would beside a fresh vLLM.
    const env = { ...BENCH_LIMITS };
    Object.assign(ctx.config, { requests, sim: SIM, env });
    const stack = await startBenchStack({ bench: ctx.name, opts: ctx.opts, scope: ctx.scope, workDir: ctx.workDir, sim: SIM, env });
    const input = await writeChatJsonl(join(ctx.workDir, "input.jsonl"), requests, {
      promptChars: [150, 350],
      maxTokens: [16, 32],
      system: "You are a concise assistant.",
    });
    const ideal = idealMakespanSeconds(input, SIM);
    Object.assign(ctx.figures, {
      input_bytes: input.bytes,
      prompt_tokens: input.promptTokens,
      completion_tokens: input.completionTokens,
      mean_service_s: round(serviceSeconds(input, SIM) / requests, 4),
      sim_capacity_req_per_s: round(requests / ideal, 0),
      ideal_makespan_s: round(ideal, 2),
    });
    ctx.log(`${requests} requests, ideal makespan ${ideal.toFixed(1)} s`);

    const api = await stack.startApi();
    const agent = await stack.startAgent();
    const usage = new UsageSampler([api.service, agent], 500);
    const sampler = new SimSampler(stack.simUrl, 250);
    const run = await runBatch(api.url, stack.db, input.path, { timeoutMs: Math.max(120_000, ideal * 3 * 1000), log: ctx.log });
    sampler.stop();
    usage.stop();
    const stats = await simStats(stack.simUrl);
    const occ = occupancy(stats);
    const t = run.timeline;
    const wall = run.phases.created_to_completed_s;
    const ok = run.final.status === "completed" && !run.timedOut;
    const ratio = ok && wall ? ideal / wall : null;
    Object.assign(ctx.figures, {
      batch_status: run.final.status,
      request_counts: run.final.request_counts,
      phases: run.phases,
      efficiency_created_to_completed: ratio === null ? null : round(ratio, 3),
      efficiency_upload_to_completed: ok && run.phases.upload_to_completed_s ? round(ideal / run.phases.upload_to_completed_s, 3) : null,
      efficiency_in_progress_to_finalizing: ok && run.phases.run_s ? round(ideal / run.phases.run_s, 3) : null,
      engine_window_s: round(occ.windowSeconds, 2),
      efficiency_engine_window: occ.windowSeconds > 0 ? round(ideal / occ.windowSeconds, 3) : null,
      sim_idle_slot_fraction: round(occ.idleFraction, 4),
      sim_busy_slot_seconds: round(occ.busySlotSeconds, 1),
      // Σ service from the sim's own accounting, against the workload's: they must agree.
      sim_busy_vs_workload_service: round(occ.busySlotSeconds / serviceSeconds(input, SIM), 4),
      sim_occupancy_while_running: sampler.summary(SIM.maxNumSeqs, t.inProgress ?? 0, t.finalizing ?? Infinity),
      pipeline_throughput_req_per_s: wall ? round(requests / wall, 0) : null,
      agent_peak_rss_mb: mb(agent.usage()?.peakRss ?? 0),
      api_peak_rss_mb: mb(api.service.usage()?.peakRss ?? 0),
      agent_cpu_s: round(agent.usage()?.cpuSeconds ?? 0, 1),
      api_cpu_s: round(api.service.usage()?.cpuSeconds ?? 0, 1),
    });
    if (run.timedOut) ctx.notes.push(`the batch was still ${run.final.status} at the deadline`);
    return [atLeast("efficiency: ideal makespan / (batch created -> completed)", ratio === null ? null : round(ratio, 3), 0.97)];
  },
};

import { join } from "node:path";
import { sql } from "kysely";
import {
  BENCH_LIMITS,
  atLeast,
  idealMakespanSeconds,
  occupancy,
  round,
  runBatch,
  scaled,
  simStats,
  startBenchStack,
  writeChatJsonl,
  type BenchContext,
  type Benchmark,
  type BenchStack,
  type NodeService,
  type SimSettings,
  type Target,
} from "../harness.js";

// Scale-out: 1, 2, 3 and 4 agents, each beside its own engine-sim, on one batch. The sims are
// latency-bound (64 slots at a GPU's per-sequence token rates, so a request takes about a second
// of simulated GPU time and the sims, not this machine's cores, limit the run). Each run's
// throughput (in_progress -> finalizing) is compared with one agent's. The batch is 12 chunks, so
// 1, 2, 3 and 4 agents each get whole chunks and none waits on another's last one (the idle tail
// at a batch's end is another issue's).

const SIM: SimSettings = { maxNumSeqs: 64, prefillTokensPerSec: 2_000, decodeTokensPerSec: 40 };
const AGENTS = [1, 2, 3, 4];
/** Divisible by every agent count. */
const CHUNKS = 12;

export const scale: Benchmark = {
  name: "scale",
  title: "throughput of 2, 3 and 4 agents (each with its own engine-sim) against one, on one batch",
  async run(ctx) {
    const chunkSize = scaled(ctx.opts, 1_000, 25);
    const requests = CHUNKS * chunkSize;
    const env = { ...BENCH_LIMITS, CHUNK_SIZE: String(chunkSize) };
    Object.assign(ctx.config, { agents: AGENTS, chunks: CHUNKS, chunk_size: chunkSize, requests, sim: SIM, env });
    const stack = await startBenchStack({ bench: ctx.name, opts: ctx.opts, scope: ctx.scope, workDir: ctx.workDir, sim: SIM, env });
    const input = await writeChatJsonl(join(ctx.workDir, "input.jsonl"), requests, { promptChars: [100, 300], maxTokens: [32, 64] });
    const ideal1 = idealMakespanSeconds(input, SIM);
    Object.assign(ctx.figures, { input_bytes: input.bytes, ideal_makespan_one_sim_s: round(ideal1, 1), sim_capacity_req_per_s: round(requests / ideal1, 1) });

    const sims = [{ service: stack.sim, url: stack.simUrl }];
    for (let i = 1; i < Math.max(...AGENTS); i++) sims.push(await stack.startSim(`engine-sim-${i + 1}`));
    const api = await stack.startApi();
    const runs: Record<string, ScaleRun> = {};
    for (const n of AGENTS) {
      runs[n] = await runWith(ctx, stack, api.url, sims.slice(0, n), input.path, requests, ideal1);
      ctx.figures.runs = runs;
    }
    const base = runs[1]?.throughput_req_per_s ?? null;
    const perAgent = (n: number) => {
      const t = runs[n]?.throughput_req_per_s;
      return base && t ? round(t / base / n, 3) : null;
    };
    ctx.figures.speedup = Object.fromEntries(AGENTS.map((n) => [n, base && runs[n] ? round(runs[n].throughput_req_per_s / base, 3) : null]));
    ctx.figures.scaling_efficiency = Object.fromEntries(AGENTS.map((n) => [n, perAgent(n)]));
    ctx.notes.push(
      "a shared, loaded 2-core machine: compare the ratios within this run, not absolute rates across runs",
      "sim i serves every run from i agents on: its idle-slot fraction in a run also counts the gap since its previous run; the run's newest sim has none",
    );
    return AGENTS.filter((n) => n > 1).map(
      (n): Target => atLeast(`throughput of ${n} agents / (${n} x one agent's)`, perAgent(n), 0.95),
    );
  },
};

interface ScaleRun {
  agents: number;
  run_s: number | null;
  created_to_completed_s: number | null;
  throughput_req_per_s: number;
  /** Sum of the sims' completions per second between 10% and 90% of the batch. */
  steady_req_per_s: number | null;
  /** The sims' minimum time for the batch split evenly over them, against run_s. */
  efficiency_vs_ideal: number | null;
  chunks_per_agent: number[];
  agent_cpu_s: number[];
  /** CPU the agents used over the run, in cores (the sims do the "GPU" work). */
  agents_cpu_cores: number | null;
  sims_cpu_s: number[];
  sim_idle_slot_fraction: number[];
}

async function runWith(
  ctx: BenchContext,
  stack: BenchStack,
  apiUrl: string,
  sims: { service: NodeService; url: string }[],
  inputPath: string,
  requests: number,
  ideal1: number,
): Promise<ScaleRun> {
  const n = sims.length;
  const before = await Promise.all(sims.map((s) => simStats(s.url)));
  const simCpu0 = sims.map((s) => s.service.usage()?.cpuSeconds ?? 0);
  const agents: NodeService[] = [];
  for (const [i, s] of sims.entries()) agents.push(await stack.startAgent(`agent-${n}x-${i + 1}`, { VLLM_URL: s.url }));
  const cpu0 = agents.map((a) => a.usage()?.cpuSeconds ?? 0);
  const progress: { t: number; done: number }[] = [];
  const run = await runBatch(apiUrl, stack.db, inputPath, {
    timeoutMs: Math.max(120_000, (ideal1 / n) * 4 * 1000),
    log: ctx.log,
    onPoll: (b) => progress.push({ t: Date.now(), done: b.request_counts.completed + b.request_counts.failed }),
  });
  const cpu = agents.map((a, i) => round((a.usage()?.cpuSeconds ?? 0) - (cpu0[i] ?? 0), 1));
  const after = await Promise.all(sims.map((s) => simStats(s.url)));
  const simCpu = sims.map((s, i) => round((s.service.usage()?.cpuSeconds ?? 0) - (simCpu0[i] ?? 0), 1));
  for (const a of agents) await ctx.scope.stopOne(a.name);
  if (run.final.status !== "completed" || run.timedOut) throw new Error(`${n} agents: the batch ended ${run.final.status}${run.timedOut ? " (timed out)" : ""}`);

  const claimed = await sql<{ agent: string; n: number }>`
    SELECT data->>'agent' AS agent, count(*)::int AS n FROM batch_events
    WHERE batch_id = ${run.batchId} AND kind = 'chunk_claimed' GROUP BY 1 ORDER BY 1`.execute(stack.db);
  const runS = run.phases.run_s;
  const result: ScaleRun = {
    agents: n,
    run_s: runS,
    created_to_completed_s: run.phases.created_to_completed_s,
    throughput_req_per_s: runS ? round(requests / runS, 1) : 0,
    steady_req_per_s: steadyRate(progress, requests),
    efficiency_vs_ideal: runS ? round(ideal1 / n / runS, 3) : null,
    chunks_per_agent: claimed.rows.map((r) => r.n),
    agent_cpu_s: cpu,
    agents_cpu_cores: runS ? round(cpu.reduce((a, b) => a + b, 0) / runS, 3) : null,
    sims_cpu_s: simCpu,
    sim_idle_slot_fraction: after.map((s, i) => {
      const a = occupancy(s);
      const b = occupancy(before[i]!);
      const busy = a.busySlotSeconds - b.busySlotSeconds;
      const idle = a.idleSlotSeconds - b.idleSlotSeconds;
      return busy + idle > 0 ? round(idle / (busy + idle), 4) : 0;
    }),
  };
  ctx.log(`${n} agents: ${result.throughput_req_per_s} req/s over ${runS} s; chunks ${result.chunks_per_agent.join("/")}; agents ${result.agents_cpu_cores} cores`);
  return result;
}

/** Completions per second between the polls that saw 10% and 90% of the batch done. */
function steadyRate(progress: { t: number; done: number }[], requests: number): number | null {
  const from = progress.find((p) => p.done >= requests * 0.1);
  const to = progress.find((p) => p.done >= requests * 0.9);
  return from && to && to.t > from.t ? round(((to.done - from.done) * 1000) / (to.t - from.t), 1) : null;
}

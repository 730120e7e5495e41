import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BUNDLE_DIR,
  RESULTS_DIR,
  Scope,
  benchProfiles,
  formatResult,
  loadAverage,
  machineInfo,
  parseOptions,
  writeResult,
  type BenchContext,
  type BenchResult,
  type Benchmark,
} from "./harness.js";
import { efficiency } from "./benchmarks/efficiency.js";
import { overhead } from "./benchmarks/overhead.js";
import { memory } from "./benchmarks/memory.js";
import { validate } from "./benchmarks/validate.js";
import { stitch } from "./benchmarks/stitch.js";
import { poll } from "./benchmarks/poll.js";
import { firstResult } from "./benchmarks/first-result.js";
import { landingBench } from "./benchmarks/landing.js";
import { fairness } from "./benchmarks/fairness.js";
import { scale } from "./benchmarks/scale.js";
import { claims } from "./benchmarks/claims.js";
import { buildServices } from "../../infra/build.js";

// `pnpm bench [--quick] [--profile] [name...]`: runs the benchmarks one after another, each on
// its own freshly started processes, and writes test/bench/results/<name>.json for each.

const ALL: Benchmark[] = [efficiency, overhead, memory, validate, stitch, poll, firstResult, landingBench, fairness, scale, claims];

const USAGE = `usage: pnpm bench [--quick] [--profile] [${ALL.map((b) => b.name).join("|")} ...]
  --quick     smoke run at BENCH_SCALE=0.02 (sizes shrunk; figures indicative only)
  --profile   run the agent and API with --cpu-prof; profiles and their summaries go to test/bench/results/
env: BENCH_SCALE=<factor> scales every size; BENCH_KEEP=1 keeps the temporary data dirs;
     BENCH_NODE_OPTIONS=<flags> is NODE_OPTIONS for the API and agent processes only;
     BENCH_SOURCE=1 runs the services' TypeScript through tsx instead of the production bundles`;

let current: Scope | undefined;
let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write(`\n[bench] ${signal}: stopping what was started (again to exit at once)\n`);
    void (current?.close() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

async function runOne(b: Benchmark, options: BenchResult["options"]): Promise<BenchResult> {
  const scope = new Scope();
  current = scope;
  const workDir = mkdtempSync(join(tmpdir(), `barge-bench-${b.name}-`));
  rmSync(join(RESULTS_DIR, "profiles", b.name), { recursive: true, force: true });
  const t0 = Date.now();
  const loadStart = loadAverage();
  const ctx: BenchContext = {
    name: b.name,
    opts: options,
    scope,
    workDir,
    log: (m) => process.stderr.write(`[${b.name} +${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}\n`),
    config: {},
    figures: {},
    notes: [],
  };
  let targets: BenchResult["targets"] = [];
  let error: string | undefined;
  try {
    targets = await b.run(ctx);
  } catch (err) {
    error = err instanceof Error ? (err.stack ?? err.message) : String(err);
    ctx.log(`failed: ${error}`);
  } finally {
    await scope.close();
    if (!options.keep) rmSync(workDir, { recursive: true, force: true });
    else ctx.log(`data kept in ${workDir}`);
  }
  const result: BenchResult = {
    name: b.name,
    title: b.title,
    target_met: error === undefined && targets.length > 0 && targets.every((t) => t.met),
    ...(error === undefined ? {} : { error }),
    started_at: new Date(t0).toISOString(),
    duration_s: Math.round((Date.now() - t0) / 100) / 10,
    options,
    machine: machineInfo(),
    load_avg: { start: loadStart, end: loadAverage() },
    config: ctx.config,
    figures: ctx.figures,
    targets,
    notes: ctx.notes,
  };
  if (options.profile) result.profiles = benchProfiles(b.name);
  return result;
}

async function main(): Promise<void> {
  const { options, names } = parseOptions(process.argv.slice(2), process.env);
  if (names.includes("help")) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const unknown = names.filter((n) => !ALL.some((b) => b.name === n));
  if (unknown.length > 0) throw new Error(`unknown benchmark ${unknown.join(", ")}\n${USAGE}`);
  const chosen = names.length === 0 ? ALL : ALL.filter((b) => names.includes(b.name));
  // The services run as they are deployed: the production bundles of this checkout.
  if (!options.source) await buildServices(BUNDLE_DIR);
  const results: BenchResult[] = [];
  for (const b of chosen) {
    if (interrupted) break;
    process.stderr.write(`[bench] ${b.name}: ${b.title} (scale ${options.scale})\n`);
    const result = await runOne(b, options);
    const file = writeResult(result);
    process.stdout.write(`${formatResult(result)}\n   -> ${file}\n\n`);
    results.push(result);
  }
  process.stdout.write("summary:\n");
  for (const r of results) {
    const missed = r.targets.filter((t) => !t.met).map((t) => t.metric);
    process.stdout.write(`  ${r.name.padEnd(13)} ${r.error ? "ERROR" : r.target_met ? "met" : `missed: ${missed.join(", ")}`}\n`);
  }
  // Benchmarks never fail the command on a missed target: the JSON records it (target_met: false).
  process.exitCode = results.some((r) => r.error) ? 1 : 0;
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});

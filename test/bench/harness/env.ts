import { mkdirSync } from "node:fs";
import { resolve } from "node:path";

/** The repository root (every child process runs with it as cwd). */
export const ROOT = resolve(import.meta.dirname, "../../..");
/** Where each benchmark writes `<name>.json`; logs and CPU profiles go below it (git-ignored). */
export const RESULTS_DIR = resolve(ROOT, "test/bench/results");

/** How a `pnpm bench` run was asked to behave. */
export interface BenchOptions {
  /** Multiplies every request count and byte size (BENCH_SCALE, or 0.02 with --quick). */
  scale: number;
  quick: boolean;
  /** Start the agent and API with `--cpu-prof` and summarize the profiles (--profile or BENCH_PROFILE=1). */
  profile: boolean;
  /** Keep the temporary data dirs (BENCH_KEEP=1), e.g. to read the S3 objects afterwards. */
  keep: boolean;
  /** NODE_OPTIONS for the API and agent processes only (BENCH_NODE_OPTIONS), recorded with the results. */
  nodeOptions: string | null;
  /** Run the services' TypeScript sources through tsx (BENCH_SOURCE=1) instead of the production bundles. */
  source: boolean;
}

/** Where `pnpm bench` puts the production bundles it runs (`pnpm build` into a scratch dir). */
export const BUNDLE_DIR = resolve(ROOT, ".tmp/bench-dist");

/** The entry point of a service: its production bundle, or with `source` its TypeScript main. */
export function serviceEntry(opts: BenchOptions, service: "api" | "agent" | "engine-sim"): string {
  return opts.source ? `services/${service}/src/main.ts` : resolve(BUNDLE_DIR, `${service}.mjs`);
}

/** Scale of a --quick smoke run: every figure is then indicative only. */
export const QUICK_SCALE = 0.02;

export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): { options: BenchOptions; names: string[] } {
  const names: string[] = [];
  let quick = false;
  let profile = env.BENCH_PROFILE === "1" || env.BENCH_PROFILE === "true";
  for (const arg of argv) {
    if (arg === "--") continue;
    if (arg === "--quick") quick = true;
    else if (arg === "--profile") profile = true;
    else if (arg.startsWith("-")) throw new Error(`unknown option ${arg} (known: --quick, --profile)`);
    else names.push(arg);
  }
  const raw = env.BENCH_SCALE;
  const scale = raw !== undefined && raw !== "" ? Number(raw) : quick ? QUICK_SCALE : 1;
  if (!Number.isFinite(scale) || scale <= 0) throw new Error(`BENCH_SCALE must be a positive number, not ${JSON.stringify(raw)}`);
  return { options: { scale, quick, profile, keep: env.BENCH_KEEP === "1", nodeOptions: env.BENCH_NODE_OPTIONS || null, source: env.BENCH_SOURCE === "1" }, names };
}

/** `n` scaled, never below `min`. */
export function scaled(opts: BenchOptions, n: number, min = 1): number {
  return Math.max(min, Math.round(n * opts.scale));
}

export function ensureDir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

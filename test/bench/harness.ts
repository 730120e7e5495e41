// The shared harness of `pnpm bench`: one module per concept under harness/, re-exported here.
import type { BenchOptions } from "./harness/env.js";
import type { Scope } from "./harness/procs.js";
import type { Target } from "./harness/results.js";

export * from "./harness/env.js";
export * from "./harness/procs.js";
export * from "./harness/stack.js";
export * from "./harness/limits.js";
export * from "./harness/rgw.js";
export * from "./harness/workload.js";
export * from "./harness/client.js";
export * from "./harness/pipeline.js";
export * from "./harness/sim.js";
export * from "./harness/results.js";
export * from "./harness/profile.js";

/** What a benchmark gets from the runner. */
export interface BenchContext {
  name: string;
  opts: BenchOptions;
  /** Everything started goes here; the runner stops it all, in reverse order, whatever happens. */
  scope: Scope;
  /** A fresh temporary directory, removed afterwards (unless BENCH_KEEP=1). */
  workDir: string;
  log(message: string): void;
  /** Settings the benchmark ran with; filled in as it goes, so a failed run still reports them. */
  config: Record<string, unknown>;
  /** Measured figures, filled in as they are measured. */
  figures: Record<string, unknown>;
  notes: string[];
}

export interface Benchmark {
  name: string;
  title: string;
  /** Runs the benchmark and returns its targets, checked against what it measured. */
  run(ctx: BenchContext): Promise<Target[]>;
}

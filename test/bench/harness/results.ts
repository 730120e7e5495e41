import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { RESULTS_DIR, ROOT, ensureDir, type BenchOptions } from "./env.js";
import type { ProfileSummary } from "./profile.js";

// What a benchmark reports: its figures, each target with whether it was met, and the machine
// and load it ran on, written to test/bench/results/<name>.json.

/** One target of the issue, checked against a measured value. */
export interface Target {
  metric: string;
  /** The target as written, e.g. ">= 0.97". */
  target: string;
  value: number | null;
  unit?: string;
  met: boolean;
}

export function atLeast(metric: string, value: number | null, min: number, unit?: string): Target {
  return { metric, target: `>= ${min}`, value, ...(unit ? { unit } : {}), met: value !== null && Number.isFinite(value) && value >= min };
}

export function atMost(metric: string, value: number | null, max: number, unit?: string): Target {
  return { metric, target: `<= ${max}`, value, ...(unit ? { unit } : {}), met: value !== null && Number.isFinite(value) && value <= max };
}

export function below(metric: string, value: number | null, max: number, unit?: string): Target {
  return { metric, target: `< ${max}`, value, ...(unit ? { unit } : {}), met: value !== null && Number.isFinite(value) && value < max };
}


export interface MachineInfo {
  cpus: number;
  cpu_model: string;
  cpu_mhz: number;
  total_memory_gb: number;
  platform: string;
  kernel: string;
  node: string;
  git_commit: string | null;
  git_dirty: boolean | null;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  let commit: string | null = null;
  let dirty: boolean | null = null;
  try {
    commit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    dirty = execFileSync("git", ["status", "--porcelain", "--", "services"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim() !== "";
  } catch {
    // Not a git checkout (e.g. a `git archive` snapshot): the runner may say which commit it is.
    commit = process.env.BENCH_GIT_COMMIT ?? null;
  }
  return {
    cpus: cpus.length,
    cpu_model: cpus[0]?.model ?? "unknown",
    cpu_mhz: cpus[0]?.speed ?? 0,
    total_memory_gb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${os.platform()} ${os.arch()}`,
    kernel: os.release(),
    node: process.version,
    git_commit: commit,
    git_dirty: dirty,
  };
}

export function loadAverage(): [number, number, number] {
  const [a = 0, b = 0, c = 0] = os.loadavg();
  return [a, b, c].map((x) => Math.round(x * 100) / 100) as [number, number, number];
}

export interface BenchResult {
  name: string;
  title: string;
  /** True when every target was measured and met. */
  target_met: boolean;
  /** Set when the benchmark could not finish. */
  error?: string;
  started_at: string;
  duration_s: number;
  options: BenchOptions;
  machine: MachineInfo;
  /** 1, 5 and 15 minute load averages when the benchmark started and ended: the machine may be shared. */
  load_avg: { start: [number, number, number]; end: [number, number, number] };
  config: Record<string, unknown>;
  figures: Record<string, unknown>;
  targets: Target[];
  notes: string[];
  profiles?: ProfileSummary[];
}

export function writeResult(result: BenchResult): string {
  const file = join(ensureDir(RESULTS_DIR), `${result.name}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  return file;
}

/** A readable block of the result for the terminal. */
export function formatResult(r: BenchResult): string {
  const lines = [`== ${r.name}: ${r.title}`, `   load average ${r.load_avg.start.join(" ")} -> ${r.load_avg.end.join(" ")}, ${r.duration_s} s`];
  if (r.error) lines.push(`   ERROR: ${r.error}`);
  // Time series stay in the JSON file; the terminal gets the figures.
  const brief = (key: string, value: unknown) => (key === "series" || key === "rss_samples" ? undefined : value);
  for (const [k, v] of Object.entries(r.figures)) lines.push(`   ${k}: ${typeof v === "object" ? JSON.stringify(v, brief) : String(v)}`);
  for (const t of r.targets ?? []) {
    lines.push(`   [${t.met ? "met" : "MISSED"}] ${t.metric} = ${t.value ?? "n/a"}${t.unit ? ` ${t.unit}` : ""} (target ${t.target})`);
  }
  for (const n of r.notes ?? []) lines.push(`   note: ${n}`);
  for (const p of r.profiles ?? []) {
    lines.push(`   profile of ${p.process ?? "?"}: ${p.file} (${p.total_ms} ms sampled), top self time:`);
    for (const f of p.top.slice(0, 10)) lines.push(`     ${f.self_pct.toFixed(1).padStart(5)}%  ${f.function}  ${f.location}`);
  }
  lines.push(`   target_met: ${r.target_met}`);
  return lines.join("\n");
}

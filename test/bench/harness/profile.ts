import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { RESULTS_DIR, ROOT } from "./env.js";

// Summaries of V8 .cpuprofile files (node --cpu-prof): self time per function, heaviest first.

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** The process (agent, api, ...) when the summary comes from a benchmark run. */
  process?: string;
  file: string;
  total_ms: number;
  /** Self time of functions, by name and source location, heaviest first. */
  top: { function: string; location: string; self_ms: number; self_pct: number }[];
  /** Self time summed per package or area (node internals, a dependency, a Barge service). */
  by_area: { area: string; self_ms: number; self_pct: number }[];
}

function area(url: string): string {
  if (url === "") return "(native / GC / idle)";
  if (url.startsWith("node:")) return "node internals";
  const pnpm = /node_modules\/\.pnpm\/([^/]+)\//.exec(url);
  if (pnpm?.[1]) return pnpm[1].replace(/@(\d[^_]*)(_.*)?$/, "");
  const mod = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (mod?.[1]) return mod[1];
  const svc = /services\/([^/]+)\//.exec(url);
  if (svc?.[1]) return `@barge/${svc[1]}`;
  return url;
}

export function summarizeProfile(file: string, top = 20): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    const node = byId.get(id);
    if (!node) return;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === "(idle)") return;
    total += dt;
    const shortUrl = url.startsWith("file://") ? relative(ROOT, url.slice(7)) : url;
    const key = `${functionName || "(anonymous)"}\t${shortUrl}${url ? `:${lineNumber + 1}` : ""}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    const a = area(shortUrl);
    areas.set(a, (areas.get(a) ?? 0) + dt);
  });
  const pct = (ms: number) => Math.round((ms / (total || 1)) * 1000) / 10;
  return {
    file: relative(ROOT, file),
    total_ms: Math.round(total),
    top: [...self.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([key, ms]) => {
        const [fn = "", location = ""] = key.split("\t");
        return { function: fn, location, self_ms: Math.round(ms), self_pct: pct(ms) };
      }),
    by_area: [...areas.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([a, ms]) => ({ area: a, self_ms: Math.round(ms), self_pct: pct(ms) })),
  };
}

/**
 * Summaries of the profiles a benchmark wrote, one per process (test/bench/results/profiles/<bench>/<process>/):
 * of each process's per-thread profiles, the main thread's, which is the one with the most samples.
 */
export function benchProfiles(bench: string): ProfileSummary[] {
  const dir = join(RESULTS_DIR, "profiles", bench);
  if (!existsSync(dir)) return [];
  const out: ProfileSummary[] = [];
  for (const proc of readdirSync(dir).sort()) {
    const files = readdirSync(join(dir, proc))
      .filter((f) => f.endsWith(".cpuprofile"))
      .map((f) => join(dir, proc, f));
    const main = files.sort((a, b) => statSync(b).size - statSync(a).size)[0];
    if (main) out.push({ process: proc, ...summarizeProfile(main) });
  }
  return out;
}

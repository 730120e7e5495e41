import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { constants, PerformanceObserver, type PerformanceEntry } from "node:perf_hooks";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";
import { noteStreamedBytes, reclaimStreamedBuffers } from "./heap-policy.js";

describe("HEAP_GROWING_PERCENT", () => {
  it("defaults to 50 and takes 0 (V8's own heuristic) up to 300", () => {
    expect(loadConfig({}).HEAP_GROWING_PERCENT).toBe(50);
    expect(loadConfig({ HEAP_GROWING_PERCENT: "0" }).HEAP_GROWING_PERCENT).toBe(0);
    expect(loadConfig({ HEAP_GROWING_PERCENT: "300" }).HEAP_GROWING_PERCENT).toBe(300);
  });

  it("rejects negative, fractional and oversized values by name", () => {
    for (const bad of ["-1", "12.5", "301", "lots"]) {
      expect(() => loadConfig({ HEAP_GROWING_PERCENT: bad })).toThrow(/HEAP_GROWING_PERCENT/);
    }
  });
});

/** Minor GCs that started while `work` ran, from V8's own gc performance entries. */
async function minorGcsDuring(work: () => void): Promise<number> {
  const entries: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => entries.push(...list.getEntries()));
  observer.observe({ entryTypes: ["gc"] });
  const t0 = performance.now();
  work();
  const t1 = performance.now();
  // Entries arrive asynchronously; wait until V8 has delivered them.
  await new Promise((resolve) => setTimeout(resolve, 50));
  observer.disconnect();
  return entries.filter((e) => {
    const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
    return kind === constants.NODE_PERFORMANCE_GC_MINOR && e.startTime >= t0 && e.startTime <= t1;
  }).length;
}

/** 10 MiB noted in 64 KiB pieces, as socket reads arrive; the loop itself allocates nothing. */
function stream10MiB(): void {
  for (let i = 0; i < 160; i++) noteStreamedBytes(64 * 1024);
}

describe("reclaimStreamedBuffers", () => {
  afterEach(() => reclaimStreamedBuffers(0));

  it("collects the young generation once per interval of streamed bytes", async () => {
    reclaimStreamedBuffers(1);
    expect(await minorGcsDuring(stream10MiB)).toBe(10);
    reclaimStreamedBuffers(4);
    expect(await minorGcsDuring(stream10MiB)).toBe(2);
  });

  it("does nothing when off", async () => {
    reclaimStreamedBuffers(0);
    expect(await minorGcsDuring(stream10MiB)).toBe(0);
  });

  it("is configured by RECLAIM_BUFFERS_MIB, 2 by default, 0 to turn it off", () => {
    expect(loadConfig({}).RECLAIM_BUFFERS_MIB).toBe(2);
    expect(loadConfig({ RECLAIM_BUFFERS_MIB: "0" }).RECLAIM_BUFFERS_MIB).toBe(0);
    for (const bad of ["-1", "0.5", "2048", "some"]) {
      expect(() => loadConfig({ RECLAIM_BUFFERS_MIB: bad })).toThrow(/RECLAIM_BUFFERS_MIB/);
    }
  });
});

/** The young generation's size after a burst of short-lived allocation, in a fresh process (flags are process-wide). */
function youngGenerationAfterChurn(hold: boolean): number {
  const policy = fileURLToPath(new URL("./heap-policy.ts", import.meta.url));
  const script = `
    const v8 = await import("node:v8");
    const { holdYoungGeneration } = await import(${JSON.stringify(policy)});
    if (${hold}) holdYoungGeneration();
    let keep = [];
    for (let i = 0; i < 3_000_000; i++) { keep.push({ i, s: "x" + i }); if (keep.length > 20_000) keep = []; }
    const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space");
    process.stdout.write(String(space.space_size));`;
  return Number(execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8" }));
}

describe("holdYoungGeneration", () => {
  it("keeps the young generation near its starting size where V8 would grow it", () => {
    const held = youngGenerationAfterChurn(true);
    const grown = youngGenerationAfterChurn(false);
    expect(held).toBeLessThanOrEqual(4 * 1024 * 1024);
    expect(grown).toBeGreaterThanOrEqual(4 * held);
  });
});

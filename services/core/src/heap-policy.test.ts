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

  it("is configured by RECLAIM_BUFFERS_MIB, 4 by default, 0 to turn it off", () => {
    expect(loadConfig({}).RECLAIM_BUFFERS_MIB).toBe(4);
    expect(loadConfig({ RECLAIM_BUFFERS_MIB: "0" }).RECLAIM_BUFFERS_MIB).toBe(0);
    for (const bad of ["-1", "0.5", "2048", "some"]) {
      expect(() => loadConfig({ RECLAIM_BUFFERS_MIB: bad })).toThrow(/RECLAIM_BUFFERS_MIB/);
    }
  });
});

import { describe, expect, it } from "vitest";
import { MIN_PART_BYTES, planParts, type PartPlan, type PartSource, type PlanOptions, type SegmentRef } from "./part-plan.js";
// A seeded PRNG, so the random cases are the same on every run.
import { mulberry32 as prng } from "@barge/devstack";

const K = 1024;
const M = 1024 * 1024;

function segs(...sizes: number[]): SegmentRef[] {
  return sizes.map((size, i) => ({ key: `s${i}`, size }));
}

/** A compact picture of a plan: "c:s1" for a copy, "s0+s1" for a concat. */
function shapeOf(plan: PartPlan[]): string[] {
  const name = (s: PartSource) => (s.range ? `${s.key}[${s.range.start},${s.range.end})` : s.key);
  return plan.map((p) => (p.kind === "copy" ? `c:${name(p.source)}` : p.sources.map(name).join("+")));
}

function sources(p: PartPlan): PartSource[] {
  return p.kind === "copy" ? [p.source] : p.sources;
}

/** The plan's bytes as [key, start, end) runs, adjacent pieces of one segment merged back together. */
function flatten(plan: PartPlan[]): [string, number, number][] {
  const out: [string, number, number][] = [];
  for (const p of plan) {
    for (const s of sources(p)) {
      const start = s.range?.start ?? 0;
      const end = s.range?.end ?? s.size;
      const last = out.at(-1);
      if (last && last[0] === s.key && last[2] === start) last[2] = end;
      else out.push([s.key, start, end]);
    }
  }
  return out;
}

function checkInvariants(input: SegmentRef[], plan: PartPlan[], opts: PlanOptions = {}) {
  const min = opts.minPartBytes ?? MIN_PART_BYTES;
  const max = opts.maxPartBytes ?? 5 * 1024 * M;
  expect(plan.map((p) => p.partNumber)).toEqual(plan.map((_, i) => i + 1));
  plan.forEach((p, i) => {
    const sum = sources(p).reduce((n, s) => n + (s.range ? s.range.end - s.range.start : s.size), 0);
    expect(p.bytes).toBe(sum);
    expect(p.bytes).toBeGreaterThan(0);
    expect(p.bytes).toBeLessThanOrEqual(max);
    if (i < plan.length - 1) expect(p.bytes).toBeGreaterThanOrEqual(min);
    if (p.kind === "copy") {
      expect(opts.copy).not.toBe(false);
      expect(p.source.size).toBeGreaterThanOrEqual(min);
    }
  });
  expect(flatten(plan)).toEqual(input.filter((s) => s.size > 0).map((s) => [s.key, 0, s.size]));
  expect(plan.reduce((n, p) => n + p.bytes, 0)).toBe(input.reduce((n, s) => n + s.size, 0));
}

describe("planParts: hand-written cases", () => {
  const cases: [string, number[], string[]][] = [
    ["empty input", [], []],
    ["only empty segments", [0, 0, 0], []],
    ["all small, under the minimum: one part", [1 * K, 2 * K, 3 * K], ["s0+s1+s2"]],
    ["one big segment", [6 * M], ["c:s0"]],
    ["a segment of exactly the minimum is copied", [5 * M, 1 * K], ["c:s0", "s1"]],
    ["a segment one byte short of the minimum is not", [5 * M - 1, 1 * K], ["s0+s1"]],
    ["small then big: the lone small run joins the big one", [1 * K, 6 * M], ["s0+s1"]],
    ["big then small: the trailing small part may be small", [6 * M, 1 * K], ["c:s0", "s1"]],
    ["empty segments are skipped", [0, 6 * M, 0, 1 * K, 0], ["c:s1", "s3"]],
    ["small runs that reach the minimum stand alone", [3 * M, 3 * M, 6 * M], ["s0+s1", "c:s2"]],
    ["a long small run is cut at the minimum", [2 * M, 2 * M, 2 * M, 2 * M], ["s0+s1+s2", "s3"]],
    ["a small tail after a cut joins the previous concat", [3 * M, 3 * M, 1 * K, 6 * M], ["s0+s1+s2", "c:s3"]],
    ["small, big, small, big, small", [1 * K, 6 * M, 1 * K, 6 * M, 1 * K], ["s0+s1+s2", "c:s3", "s4"]],
    ["big, small, big, small, big", [6 * M, 1 * K, 6 * M, 1 * K, 6 * M], ["c:s0", "s1+s2+s3", "c:s4"]],
    ["a small run between copies goes to the smaller neighbour (before)", [6 * M, 1 * K, 7 * M], ["s0+s1", "c:s2"]],
    ["a small run between copies goes to the smaller neighbour (after)", [7 * M, 1 * K, 6 * M], ["c:s0", "s1+s2"]],
    ["consecutive big segments are all copied", [6 * M, 8 * M, 12 * M], ["c:s0", "c:s1", "c:s2"]],
  ];
  for (const [name, sizes, want] of cases) {
    it(name, () => {
      const input = segs(...sizes);
      const plan = planParts(input);
      expect(shapeOf(plan)).toEqual(want);
      checkInvariants(input, plan);
    });
  }

  it("copy: false concatenates everything, cutting at the minimum", () => {
    const input = segs(6 * M, 1 * K, 6 * M, 1 * K);
    const plan = planParts(input, { copy: false });
    expect(shapeOf(plan)).toEqual(["s0", "s1+s2", "s3"]);
    checkInvariants(input, plan, { copy: false });
  });

  it("splits a segment larger than the part ceiling into ranged copies", () => {
    const opts = { minPartBytes: 10, maxPartBytes: 25 };
    const input = segs(100, 3);
    const plan = planParts(input, opts);
    expect(shapeOf(plan)).toEqual(["c:s0[0,25)", "c:s0[25,50)", "c:s0[50,75)", "c:s0[75,100)", "s1"]);
    checkInvariants(input, plan, opts);
  });

  it("splits oversized segments into ranged concat pieces when copying is off", () => {
    const opts = { minPartBytes: 10, maxPartBytes: 25, copy: false };
    const input = segs(5, 60);
    const plan = planParts(input, opts);
    expect(shapeOf(plan)).toEqual(["s0+s1[0,20)", "s1[20,45)", "s1[45,60)"]);
    checkInvariants(input, plan, opts);
  });

  it("raises the part floor so the part count stays within maxParts", () => {
    const input = segs(...Array<number>(100).fill(10));
    const plan = planParts(input, { minPartBytes: 10, maxPartBytes: 1000, maxParts: 3 });
    expect(plan.length).toBeLessThanOrEqual(3);
    expect(plan.map((p) => p.bytes)).toEqual([500, 500]);
    expect(plan.every((p) => p.kind === "concat")).toBe(true);
  });

  it("rejects negative, fractional and impossible sizes", () => {
    expect(() => planParts(segs(-1))).toThrow(RangeError);
    expect(() => planParts(segs(1.5))).toThrow(RangeError);
    expect(() => planParts(segs(10), { minPartBytes: 10, maxPartBytes: 19 })).toThrow(RangeError);
  });
});


function randomSizes(rand: () => number): number[] {
  const n = Math.floor(rand() * 60);
  const between = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  return Array.from({ length: n }, () => {
    const r = rand();
    if (r < 0.05) return 0;
    if (r < 0.45) return between(1 * K, 64 * K);
    if (r < 0.75) return between(64 * K, 3 * M);
    return between(5 * M - 2, 12 * M);
  });
}

describe("planParts: randomized properties (fixed seed)", () => {
  const rand = prng(20240611);
  const lists = Array.from({ length: 600 }, () => randomSizes(rand));

  it("covers the interesting shapes", () => {
    const bigs = lists.map((l) => l.filter((s) => s >= MIN_PART_BYTES).length);
    expect(bigs.filter((b) => b === 0).length).toBeGreaterThan(5);
    expect(bigs.filter((b) => b >= 5).length).toBeGreaterThan(100);
    const losesCopies = lists.filter((l) => planParts(segs(...l)).filter((p) => p.kind === "copy").length < l.filter((s) => s >= MIN_PART_BYTES).length);
    expect(losesCopies.length).toBeGreaterThan(50);
  });

  it("keeps every rule, with and without copy", () => {
    for (const sizes of lists) {
      const input = segs(...sizes);
      checkInvariants(input, planParts(input));
      checkInvariants(input, planParts(input, { copy: false }), { copy: false });
    }
  });

  it("loses at most one copy per too-small run in front of a big segment, and none to longer runs", () => {
    for (const sizes of lists) {
      const nonEmpty = sizes.filter((s) => s > 0);
      let bigs = 0;
      let shortRunsBeforeBig = 0;
      let run = 0;
      for (const s of nonEmpty) {
        if (s < MIN_PART_BYTES) {
          run += s;
          continue;
        }
        bigs++;
        if (run > 0 && run < MIN_PART_BYTES) shortRunsBeforeBig++;
        run = 0;
      }
      const copied = planParts(segs(...sizes)).filter((p) => p.kind === "copy").length;
      expect(bigs - copied, sizes.join(",")).toBeLessThanOrEqual(shortRunsBeforeBig);
      expect(copied).toBeLessThanOrEqual(bigs);
    }
  });

  it("is deterministic", () => {
    for (const sizes of lists.slice(0, 50)) {
      expect(planParts(segs(...sizes))).toEqual(planParts(segs(...sizes)));
    }
  });
});

import { describe, expect, it } from "vitest";
import type { OutputPartChunk } from "@barge/core";
import { chooseParts } from "./build-part.js";

const MiB = 1024 * 1024;

/** Chunks 0..n-1 of the given output sizes (MiB), complete unless listed, covered by the given parts. */
function batch(sizesMiB: number[], opts: { incomplete?: number[]; parts?: [number, number][] } = {}): OutputPartChunk[] {
  return sizesMiB.map((s, idx) => {
    const part = (opts.parts ?? []).find(([f, l]) => idx >= f && idx <= l);
    return { idx, complete: !(opts.incomplete ?? []).includes(idx), bytes: s * MiB, part: part ? { first: part[0], last: part[1] } : null };
  });
}

const ranges = (runs: { first: number; last: number; replaces: number[] }[]) => runs.map((r) => [r.first, r.last, r.replaces]);

describe("chooseParts: which runs of chunks a completion uploads as parts", () => {
  it("cuts a run of small chunks into parts of at least 5 MiB, in order; the rest waits for its neighbours", () => {
    expect(ranges(chooseParts(batch([2, 2, 2, 2, 2, 2, 2], { incomplete: [6] }), 3))).toEqual([
      [0, 2, []],
      [3, 5, []],
    ]);
    const cut = chooseParts(batch([2, 2, 2, 2, 2], { incomplete: [4] }), 1);
    expect(ranges(cut)).toEqual([[0, 2, []]]);
    expect(cut[0]!.bytes).toBe(6 * MiB);
  });

  it("a run still below 5 MiB with an unfinished neighbour uploads nothing", () => {
    expect(chooseParts(batch([2, 2, 2, 2], { incomplete: [2] }), 1)).toEqual([]);
    expect(chooseParts(batch([2, 2, 2, 2], { incomplete: [0], parts: [[2, 3]] }), 1)).toEqual([]);
  });

  it("a chunk of 5 MiB or more is a part of its own, as before grouping", () => {
    expect(ranges(chooseParts(batch([6, 7, 8], { incomplete: [2] }), 0))).toEqual([
      [0, 0, []],
      [1, 1, []],
    ]);
    expect(ranges(chooseParts(batch([6, 7, 1]), 2))).toEqual([
      [0, 0, []],
      [1, 1, []],
      [2, 2, []],
    ]);
  });

  it("the run reaching the batch's last chunk is the last part, small or not", () => {
    expect(ranges(chooseParts(batch([2, 2, 2, 1], { parts: [[0, 2]] }), 3))).toEqual([[3, 3, []]]);
    expect(ranges(chooseParts(batch([2, 2, 2, 1, 1], { incomplete: [0] }), 3))).toEqual([[1, 3, []], [4, 4, []]]);
  });

  it("a remainder whose next chunk is covered joins the part before it", () => {
    expect(ranges(chooseParts(batch([2, 2, 2, 2, 6], { incomplete: [], parts: [[4, 4]] }), 0))).toEqual([[0, 3, []]]);
  });

  it("a run too small that can no longer grow joins the part after it, which is uploaded again", () => {
    const merged = chooseParts(batch([2, 2, 2, 2, 2, 1], { parts: [[0, 2], [4, 5]] }), 3);
    expect(ranges(merged)).toEqual([[3, 5, [4]]]);
    expect(merged[0]!.bytes).toBe(5 * MiB);
    // Open on the left (chunk 0 unfinished): it waits for chunk 0 instead.
    expect(chooseParts(batch([2, 2, 2, 1], { incomplete: [0], parts: [[2, 3]] }), 1)).toEqual([]);
  });

  it("a part is numbered after its first chunk with output", () => {
    // Chunk 1's requests all failed: the last part is chunks 1-2, numbered after chunk 2.
    expect(ranges(chooseParts(batch([6, 0, 1]), 2))).toEqual([
      [0, 0, []],
      [2, 2, []],
    ]);
  });

  it("nothing for a covered or unfinished chunk, chunks without output, or a part over 5 GiB", () => {
    expect(chooseParts(batch([2, 2, 2], { parts: [[0, 2]] }), 1)).toEqual([]);
    expect(chooseParts(batch([2, 2, 2], { incomplete: [1] }), 1)).toEqual([]);
    expect(chooseParts(batch([0, 0, 0]), 2)).toEqual([]);
    expect(chooseParts(batch([6 * 1024]), 0)).toEqual([]);
  });
});

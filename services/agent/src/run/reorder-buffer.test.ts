import { describe, expect, it } from "vitest";
import { ReorderBuffer } from "./reorder-buffer.js";

describe("ReorderBuffer", () => {
  it("releases out-of-order completions strictly in input order", () => {
    const buf = new ReorderBuffer<string>(8);
    expect(buf.put(2, "c")).toEqual([]);
    expect(buf.put(1, "b")).toEqual([]);
    expect(buf.size).toBe(2);
    expect(buf.next).toBe(0);
    expect(buf.put(0, "a")).toEqual(["a", "b", "c"]);
    expect(buf.size).toBe(0);
    expect(buf.next).toBe(3);
    expect(buf.put(4, "e")).toEqual([]);
    expect(buf.put(3, "d")).toEqual(["d", "e"]);
    expect(buf.next).toBe(5);
  });

  it("releases every permutation in order, each item exactly once", () => {
    const n = 50;
    // A fixed shuffle (multiplicative stride coprime to n) so the test is reproducible.
    const order = Array.from({ length: n }, (_, i) => (i * 17) % n);
    const buf = new ReorderBuffer<number>(n);
    const out: number[] = [];
    for (const pos of order) out.push(...buf.put(pos, pos));
    expect(out).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(buf.size).toBe(0);
  });

  it("bounds dispatch to the window ahead of the oldest unfinished position", () => {
    const buf = new ReorderBuffer<string>(3);
    expect(buf.canAccept(0)).toBe(true);
    expect(buf.canAccept(2)).toBe(true);
    expect(buf.canAccept(3)).toBe(false);
    buf.put(1, "b");
    buf.put(2, "c");
    // Position 0 is still missing, so nothing further may be dispatched however much finished.
    expect(buf.canAccept(3)).toBe(false);
    expect(() => buf.put(3, "d")).toThrow(RangeError);
    expect(buf.put(0, "a")).toEqual(["a", "b", "c"]);
    expect(buf.canAccept(3)).toBe(true);
    expect(buf.canAccept(5)).toBe(true);
    expect(buf.canAccept(6)).toBe(false);
  });

  it("never holds more than window - 1 results", () => {
    const window = 4;
    const buf = new ReorderBuffer<number>(window);
    let maxHeld = 0;
    let released = 0;
    // The runner's rule: dispatch pos only if canAccept(pos); complete everything but the oldest first.
    for (let round = 0; round < 10; round++) {
      const base = buf.next;
      for (let pos = base + 1; buf.canAccept(pos); pos++) {
        released += buf.put(pos, pos).length;
        maxHeld = Math.max(maxHeld, buf.size);
      }
      released += buf.put(base, base).length;
    }
    expect(maxHeld).toBe(window - 1);
    expect(released).toBe(10 * window);
  });

  it("rejects duplicates, positions already released, and bad windows", () => {
    const buf = new ReorderBuffer<string>(4, 10);
    expect(buf.next).toBe(10);
    expect(() => buf.put(9, "x")).toThrow(RangeError);
    buf.put(11, "b");
    expect(() => buf.put(11, "again")).toThrow(RangeError);
    expect(buf.put(10, "a")).toEqual(["a", "b"]);
    expect(() => buf.put(10, "again")).toThrow(RangeError);
    expect(() => new ReorderBuffer(0)).toThrow(RangeError);
  });
});

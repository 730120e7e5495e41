import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";

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

import { describe, expect, it } from "vitest";
import { MAX_JSON_DEPTH, nestsDeeperThan } from "./request-line-check.js";

describe("nestsDeeperThan", () => {
  it("counts arrays and objects outside strings, up to the limit and one past it", () => {
    expect(MAX_JSON_DEPTH).toBe(128);
    expect(nestsDeeperThan(`{"a":${"[".repeat(127)}${"]".repeat(127)}}`)).toBe(false);
    expect(nestsDeeperThan(`{"a":${"[".repeat(128)}${"]".repeat(128)}}`)).toBe(true);
    expect(nestsDeeperThan(`{"a":"${"[{".repeat(200)}\\"[["}`)).toBe(false);
    expect(nestsDeeperThan("[".repeat(100_000))).toBe(true);
  });
});

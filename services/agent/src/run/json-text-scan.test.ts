import { describe, expect, it } from "vitest";
import { customIdIn, MAX_NESTING_DEPTH, nestsDeeperThan } from "./json-text-scan.js";

describe("nestsDeeperThan", () => {
  it("counts arrays and objects outside strings, up to the limit and one past it", () => {
    expect(MAX_NESTING_DEPTH).toBe(128);
    expect(nestsDeeperThan(`{"a":${"[".repeat(127)}${"]".repeat(127)}}`)).toBe(false);
    expect(nestsDeeperThan(`{"a":${"[".repeat(128)}${"]".repeat(128)}}`)).toBe(true);
    expect(nestsDeeperThan(`{"a":"${"[{".repeat(200)}\\"[["}`)).toBe(false);
    expect(nestsDeeperThan("[".repeat(100_000))).toBe(true);
  });
});

describe("customIdIn", () => {
  it("finds the top-level custom_id in the start of a line, escapes decoded", () => {
    expect(customIdIn('{"custom_id":"x","body":{"messages":[')).toBe("x");
    expect(customIdIn('{"body":{"custom_id":"inner","a":[1,"}"]} , "custom_id" : "l\\"ate\\u00e9"}')).toBe('l"ateé');
  });

  it("gives undefined when the start does not hold it", () => {
    expect(customIdIn('{"body":{"custom_id":"inner","messages":[{"content":"xxx')).toBeUndefined();
    expect(customIdIn('{"method":"custom_id","custom_id":')).toBeUndefined();
    expect(customIdIn('{"custom_id":"cut off')).toBeUndefined();
    // Text Postgres cannot store: NUL and lone surrogates.
    expect(customIdIn('{"custom_id":"a\\u0000b"}')).toBeUndefined();
    expect(customIdIn('{"custom_id":"a\\ud800b"}')).toBeUndefined();
    expect(customIdIn('{"custom_id":"\\ud83d\\ude00"}')).toBe("\u{1f600}");
  });
});

import { describe, expect, it } from "vitest";
import { customIdIn } from "./json-text-scan.js";

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

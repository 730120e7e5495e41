import { describe, expect, test } from "vitest";
import { LineCounter } from "./line-count.js";

function count(pieces: string[]): number {
  const c = new LineCounter();
  for (const p of pieces) c.add(Buffer.from(p));
  return c.lines;
}

describe("LineCounter", () => {
  test("counts non-blank lines, with or without a final newline, CRLF included", () => {
    expect(count(['{"a":1}\n{"b":2}\n'])).toBe(2);
    expect(count(['{"a":1}\n{"b":2}'])).toBe(2);
    expect(count(['{"a":1}\r\n{"b":2}\r\n'])).toBe(2);
    expect(count([""])).toBe(0);
  });

  test("skips blank and whitespace-only lines", () => {
    expect(count(["\n\n  \t\n{}\n\r\n \v\f\n{}"])).toBe(2);
  });

  test("a line split across pieces counts once, wherever the split falls", () => {
    const text = '{"a":1}\n\n  {"b":2}\n   \n{"c":3}';
    for (let cut = 0; cut <= text.length; cut++) {
      expect(count([text.slice(0, cut), text.slice(cut)]), `cut at ${cut}`).toBe(3);
    }
    expect(count(["  ", "  ", "x", "\n", "\n", "y"])).toBe(2);
  });
});

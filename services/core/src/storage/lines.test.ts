import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { readLines, type Line } from "./lines.js";

async function collect(pieces: (string | Buffer)[], start?: { offset: number; lineNo: number }): Promise<Line[]> {
  const out: Line[] = [];
  const src = Readable.from(pieces.map((p) => (typeof p === "string" ? Buffer.from(p) : p)));
  for await (const l of readLines(src, start)) out.push(l);
  return out;
}

describe("readLines", () => {
  it("tracks byte offsets across pieces, multi-byte characters and CRLF", async () => {
    const text = 'a\r\n{"x":"é"}\nlast';
    const bytes = Buffer.from(text);
    // Split in the middle of the two-byte é and of the CRLF.
    const cut1 = bytes.indexOf(Buffer.from("é")) + 1;
    const lines = await collect([bytes.subarray(0, 2), bytes.subarray(2, cut1), bytes.subarray(cut1)]);
    expect(lines.map((l) => l.text)).toEqual(["a", '{"x":"é"}', "last"]);
    expect(lines.map((l) => [l.offset, l.end, l.lineNo])).toEqual([
      [0, 3, 1],
      [3, 14, 2],
      [14, 18, 3],
    ]);
    for (const l of lines) expect(bytes.subarray(l.offset, l.end).toString().replace(/\r?\n$/, "")).toBe(l.text);
  });

  it("continues numbering from a resume point and yields nothing for empty input", async () => {
    const lines = await collect(["x\ny\n"], { offset: 100, lineNo: 7 });
    expect(lines).toEqual([
      { text: "x", offset: 100, end: 102, lineNo: 7 },
      { text: "y", offset: 102, end: 104, lineNo: 8 },
    ]);
    expect(await collect([])).toEqual([]);
  });
});

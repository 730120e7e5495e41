import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { readLineBlocks, readLines, type Line, type LineBlock } from "./lines.js";

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

async function blocks(pieces: Buffer[]): Promise<LineBlock[]> {
  const out: LineBlock[] = [];
  for await (const b of readLineBlocks(Readable.from(pieces))) out.push(b);
  return out;
}

describe("readLineBlocks", () => {
  it("cuts pieces after their last newline, copying only the lines that straddle pieces", async () => {
    const bytes = Buffer.from("ab\ncd\r\nef\ngh\nij");
    const pieces = [bytes.subarray(0, 4), bytes.subarray(4, 6), bytes.subarray(6, 15), bytes.subarray(15)];
    const got = await blocks(pieces);
    expect(got.map((b) => [b.bytes.toString(), b.offset, b.lineNo])).toEqual([
      ["ab\n", 0, 1],
      ["cd\r\n", 3, 2],
      ["ef\ngh\n", 7, 3],
      ["ij", 13, 5],
    ]);
    // The block inside one piece is a view of it, not a copy.
    expect(got[2]!.bytes.buffer).toBe(pieces[2]!.buffer);
    expect(Buffer.concat(got.map((b) => b.bytes))).toEqual(bytes);
  });

  it("yields nothing for empty input and one block for a single piece", async () => {
    expect(await blocks([])).toEqual([]);
    const got = await blocks([Buffer.from("x\ny\n")]);
    expect(got.map((b) => [b.bytes.toString(), b.offset, b.lineNo])).toEqual([["x\ny\n", 0, 1]]);
  });
});

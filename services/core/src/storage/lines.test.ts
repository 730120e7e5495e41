import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_LINE_BYTES, LineTooLarge, readLineBlocks, readLines, type Line, type LineBlock } from "./lines.js";

async function collect(pieces: (string | Buffer)[], start?: { offset: number; lineNo: number }, maxLineBytes?: number): Promise<Line[]> {
  const out: Line[] = [];
  const src = Readable.from(pieces.map((p) => (typeof p === "string" ? Buffer.from(p) : p)));
  for await (const l of readLines(src, start, maxLineBytes === undefined ? {} : { maxLineBytes })) out.push(l);
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

async function blocks(pieces: Buffer[], maxLineBytes?: number): Promise<LineBlock[]> {
  const out: LineBlock[] = [];
  for await (const b of readLineBlocks(Readable.from(pieces), maxLineBytes === undefined ? {} : { maxLineBytes })) out.push(b);
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

/** `bytes` cut into pieces of `size` bytes, each a view of it. */
function cut(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

describe("readLines on long lines", () => {
  it("reads a 40 MB line that straddles 64 KiB pieces whole, with exact offsets", async () => {
    const long = 40 * 1000 * 1000;
    const bytes = Buffer.concat([Buffer.from("a\n"), Buffer.alloc(long, 0x78), Buffer.from("\r\nb")]);
    const lines = await collect(cut(bytes, 64 * 1024), undefined, 64 * 1000 * 1000);
    expect(lines.map((l) => [l.text.length, l.offset, l.end, l.lineNo])).toEqual([
      [1, 0, 2, 1],
      [long, 2, long + 4, 2],
      [1, long + 4, long + 5, 3],
    ]);
    expect(lines[1]!.text.startsWith("xxx") && lines[1]!.text.endsWith("xxx")).toBe(true);
  });

  it("accepts a line of exactly the limit, with LF or CRLF or none, and throws LineTooLarge past it", async () => {
    const max = 1024;
    const x = "x".repeat(max);
    const ok = await collect(cut(Buffer.from(`${x}\n${x}\r\n${x}`), 100), undefined, max);
    expect(ok.map((l) => [l.text.length, l.offset, l.end, l.lineNo])).toEqual([
      [max, 0, max + 1, 1],
      [max, max + 1, 2 * max + 3, 2],
      [max, 2 * max + 3, 3 * max + 3, 3],
    ]);
    const err = await collect(cut(Buffer.from(`ab\n${x}y\nc\n`), 100), { offset: 10, lineNo: 4 }, max).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LineTooLarge);
    expect(err).toMatchObject({ lineNo: 5, offset: 13 });
    expect((err as LineTooLarge).bytes).toBeGreaterThan(max);
    // The last line, unterminated and one byte too long, throws as well.
    await expect(collect([`a\n${x}y`], undefined, max)).rejects.toMatchObject({ name: "LineTooLarge", lineNo: 2, offset: 2, bytes: max + 1 });
  });

  it("defaults to a 16 MiB limit", () => {
    expect(DEFAULT_MAX_LINE_BYTES).toBe(16777216);
  });
});

describe("readLineBlocks on long lines", () => {
  const max = 1024;
  const x = "x".repeat(max);
  const shape = (bs: LineBlock[]) => bs.map((b) => [b.bytes.toString(), b.offset, b.lineNo, b.oversizedLineBytes]);

  it("keeps a line of exactly the limit, LF or CRLF, in one piece or many", async () => {
    const bytes = Buffer.from(`${x}\r\n${x}\n${x}`);
    for (const size of [bytes.length, 100, 1025]) {
      const got = await blocks(cut(bytes, size), max);
      expect(Buffer.concat(got.map((b) => b.bytes))).toEqual(bytes);
      expect(got.every((b) => b.oversizedLineBytes === undefined)).toBe(true);
    }
  });

  it("stands one empty block for each oversized line, and numbers the lines after it right", async () => {
    const bytes = Buffer.from(`a\n${x}y\r\nb\n${x}zz\nc`);
    const expected = [
      ["a\n", 0, 1, undefined],
      ["", 2, 2, max + 3],
      ["b\n", max + 5, 3, undefined],
      ["", max + 7, 4, max + 3],
      ["c", 2 * max + 10, 5, undefined],
    ];
    // Whole, in pieces that straddle each oversized line many times, and in pieces that cut its CRLF.
    for (const size of [bytes.length, 7, 64, max + 3]) {
      expect(shape(await blocks(cut(bytes, size), max))).toEqual(expected);
    }
  });

  it("skips an oversized last line without a newline", async () => {
    const got = await blocks(cut(Buffer.from(`a\n${x}y`), 300), max);
    expect(shape(got)).toEqual([
      ["a\n", 0, 1, undefined],
      ["", 2, 2, max + 1],
    ]);
  });

  it("never holds more than the limit of an oversized line straddling many pieces", async () => {
    const bytes = Buffer.concat([Buffer.alloc(50 * max, 0x78), Buffer.from("\nok\n")]);
    const got = await blocks(cut(bytes, 64), max);
    expect(shape(got)).toEqual([
      ["", 0, 1, 50 * max + 1],
      ["ok\n", 50 * max + 1, 2, undefined],
    ]);
  });
});

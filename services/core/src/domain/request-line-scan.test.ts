import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { BatchErrorEntry } from "../db/schema.js";
import { readLineBlocks, readLines } from "../storage/lines.js";
import { FingerprintSet } from "./fingerprint-set.js";
import { isSupportedEndpoint, requestLineSchema } from "./request-line.js";
import { scanRequestLine, scanState, type ScannedRequest } from "./request-line-scan.js";
import { checkRequestLine } from "./request-line-check.js";
import { validateBatchInput } from "./validate.js";
import { mulberry32 } from "@barge/devstack";

// The byte scanner is the hot path; JSON.parse + zod (requestLineSchema) is the contract. These
// tests run both over the same lines (valid ones of many shapes, hand-picked edge cases, and
// thousands of random mutations of both) and require: whatever the scanner accepts, the contract
// accepts with the same fields; and the whole validator, fast path included, reports exactly what
// a reference validator built on the contract alone reports.


type Verdict = { ok: false } | { ok: true; customId: string; url: string; model: string; stream: boolean };

function contract(text: string): Verdict {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false };
  }
  const r = requestLineSchema.safeParse(json);
  if (!r.success) return { ok: false };
  return { ok: true, customId: r.data.custom_id, url: r.data.url, model: r.data.body.model, stream: r.data.body.stream === true };
}

function scan(bytes: Buffer): Verdict {
  // Padded on both sides, so a scan that strays outside its line would be caught.
  const padded = Buffer.concat([Buffer.from('"x\\'), bytes, Buffer.from('"}\n{')]);
  const out: ScannedRequest = { customIdStart: 0, customIdEnd: 0, url: "", model: "", stream: false };
  if (!scanRequestLine(padded, 3, 3 + bytes.length, out)) return { ok: false };
  return { ok: true, customId: padded.toString("utf8", out.customIdStart, out.customIdEnd), url: out.url, model: out.model, stream: out.stream };
}

const VALID: string[] = [
  JSON.stringify({ custom_id: "a", method: "POST", url: "/v1/chat/completions", body: { model: "m", messages: [{ role: "user", content: "hi" }] } }),
  JSON.stringify({ body: { messages: [], model: "m" }, url: "/v1/embeddings", method: "POST", custom_id: "b" }),
  JSON.stringify({ custom_id: "ç-日本-😀", method: "POST", url: "/v1/x", body: { model: "modèle", stream: true } }),
  JSON.stringify({ custom_id: "c", method: "POST", url: "/v1/chat/completions", body: { model: "m", stream: false, n: [0, -1, 1.5, -0.25e-3, 2E+10, 1e5, true, false, null, {}, [], [[{}]], ""] } }),
  JSON.stringify({ custom_id: "d", method: "POST", url: "u", body: { model: "m", stream: "true", text: 'quote " backslash \\ newline \n tab \t \u0001 \u2028 é' } }),
  JSON.stringify({ custom_id: "e", method: "POST", url: "u", body: { model: "m", stream: 1 }, extra: { deep: { er: [1, { x: null }] } } }),
  ` \t{ "custom_id" : "f" , "method":"POST","url" :"u",\r"body": { "model" : "m" , "stream" : true } } \t `,
  JSON.stringify({ custom_id: "x".repeat(512), method: "POST", url: "u", body: { model: "m" } }),
  JSON.stringify({ custom_id: "é".repeat(512), method: "POST", url: "u", body: { model: "m" } }),
  `{"custom_id":"g","method":"POST","url":"u","body":{"model":"m","a":"\\u00e9\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\"\\\\"}}`,
  // Strings past the short walk, where the scanner searches natively: escapes at, before and after
  // word boundaries, an escaped quote just before the closing one, multi-byte text, a long custom_id.
  JSON.stringify({ custom_id: "h", method: "POST", url: "u", body: { model: "m", messages: [{ role: "user", content: `${"word ".repeat(9)}"quoted"\\ and\nlines\t${"é日".repeat(12)}end"` }] } }),
  JSON.stringify({ custom_id: "i".repeat(40), method: "POST", url: "u", body: { model: "m", a: "x".repeat(23), b: "y".repeat(24), c: "z".repeat(25) + "\\", d: "\u0001".repeat(3) + "q".repeat(30) } }),
  // Dense escapes, where the scanner walks the rest of the string: newlines, quotes, unicode escapes.
  JSON.stringify({ custom_id: "j", method: "POST", url: "u", body: { model: "m", content: `${"a line of text\n".repeat(6)}"said" \\ ${"\u0002é".repeat(5)}${"tail ".repeat(8)}` } }),
];

/** Lines the contract rejects (JSON or schema), each a different way. */
const INVALID: string[] = [
  "",
  "{",
  "{}",
  "[]",
  "null",
  '"a"',
  "{not json",
  JSON.stringify({ custom_id: "a", method: "POST", url: "u" }),
  JSON.stringify({ custom_id: "", method: "POST", url: "u", body: { model: "m" } }),
  JSON.stringify({ custom_id: "x".repeat(513), method: "POST", url: "u", body: { model: "m" } }),
  JSON.stringify({ custom_id: 1, method: "POST", url: "u", body: { model: "m" } }),
  JSON.stringify({ custom_id: "a", method: "GET", url: "u", body: { model: "m" } }),
  JSON.stringify({ custom_id: "a", method: "post", url: "u", body: { model: "m" } }),
  JSON.stringify({ custom_id: "a", method: "POST", url: "", body: { model: "m" } }),
  JSON.stringify({ custom_id: "a", method: "POST", url: "u", body: { model: "" } }),
  JSON.stringify({ custom_id: "a", method: "POST", url: "u", body: { model: 3 } }),
  JSON.stringify({ custom_id: "a", method: "POST", url: "u", body: [] }),
  JSON.stringify({ custom_id: "a", method: "POST", url: "u", body: "x" }),
  JSON.stringify({ custom_id: "a", method: "POST", url: "u", body: {} }),
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m"}} x',
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m"},}',
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m",}}',
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","x":[1,]}}',
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","x":01}}',
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","x":1.}}',
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","x":-}}',
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","x":1e}}',
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","x":tru}}',
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","x":"\t"}}',
  `{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","x":"${"a".repeat(41)}\t${"b".repeat(9)}"}}`,
  `{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","x":"${"a".repeat(30)}\\q${"b".repeat(30)}"}}`,
  `{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","x":"${"a".repeat(30)}\u0000"}}`,
  `{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","x":"${"ab\\n".repeat(30)}\t${"c".repeat(30)}"}}`,
  `{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","x":"${"ab\\n".repeat(30)}\\x"}}`,
  `{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","x":"${"ab\\n".repeat(30)}}}`,
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","x":"\\x"}}',
  // A backslash then structure: invalid escapes, but a scan that ended the string at the backslash would read on.
  '{"custom_id":"a\\,"method":"POST","url":"u","body":{"model":"m"}}',
  '{"custom_id":"a","method":"POST","url":"u\\,"body":{"model":"m"}}',
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m\\}}',
  `{"custom_id":"${"a".repeat(30)}\\q","method":"POST","url":"u","body":{"model":"m"}}`,
  `{"custom_id":"a","method":"POST","url":"/v1/${"a".repeat(30)}\\q","body":{"model":"m"}}`,
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","x":"\\u12g4"}}',
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","x":"abc}}',
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","x":{"a" 1}}}',
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","x":{1:1}}}',
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","x":[}}',
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m"}}}',
  "\uFEFF" + JSON.stringify({ custom_id: "a", method: "POST", url: "u", body: { model: "m" } }),
];

/** Valid lines the scanner leaves to the contract on purpose: escapes in what it reads, repeated keys, deep nesting. */
const LEFT_TO_CONTRACT: string[] = [
  '{"custom_id":"a\\u0062","method":"POST","url":"u","body":{"model":"m"}}',
  '{"custom\\u005fid":"a","method":"POST","url":"u","body":{"model":"m"}}',
  '{"custom_id":"a","method":"PO\\u0053T","url":"u","body":{"model":"m"}}',
  '{"custom_id":"a","method":"POST","url":"\\/v1","body":{"model":"m"}}',
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m\\n"}}',
  '{"custom_id":"a","custom_id":"b","method":"POST","url":"u","body":{"model":"m"}}',
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","model":"n"}}',
  '{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","stream":true,"stream":false}}',
  `{"custom_id":"a","method":"POST","url":"u","body":{"model":"m","x":${"[".repeat(70)}${"]".repeat(70)}}}`,
];

const NOISE = ['"', "\\", "{", "}", "[", "]", ",", ":", " ", "\t", "\r", "0", "-", "e", ".", "t", "\u0001", "é", "\u00ff", "u", "1", "\\u", "a"];

/** Random edits of a line, as bytes: deletions, insertions of JSON's special characters, truncation, repeats. */
function mutate(line: string, rand: () => number): Buffer {
  let b = Buffer.from(line);
  const edits = rand() < 0.7 ? 1 : 2 + Math.floor(rand() * 2);
  for (let k = 0; k < edits; k++) {
    const at = Math.floor(rand() * (b.length + 1));
    const kind = Math.floor(rand() * 5);
    if (kind === 0 && b.length > 0) b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
    else if (kind === 1) b = Buffer.concat([b.subarray(0, at), Buffer.from(NOISE[Math.floor(rand() * NOISE.length)]!), b.subarray(at)]);
    else if (kind === 2) b = b.subarray(0, at);
    else if (kind === 3) b = Buffer.concat([b.subarray(0, at), Buffer.from([Math.floor(rand() * 256)]), b.subarray(at)]);
    else b = Buffer.concat([b.subarray(0, at), b.subarray(Math.max(0, at - 8), at), b.subarray(at)]);
  }
  return b;
}

function corpus(): Buffer[] {
  const rand = mulberry32(7);
  const base = [...VALID, ...INVALID, ...LEFT_TO_CONTRACT];
  const out: Buffer[] = base.map((l) => Buffer.from(l));
  for (let i = 0; i < 20_000; i++) out.push(mutate(base[i % base.length]!, rand));
  return out;
}

describe("scanRequestLine", () => {
  it("accepts every valid line of the corpus with the contract's own fields", () => {
    expect(VALID.map((l) => scan(Buffer.from(l)))).toEqual(VALID.map((l) => contract(l)));
    expect(VALID.filter((l) => contract(l).ok)).toHaveLength(VALID.length);
  });

  it("accepts valid lines wherever they start in a buffer, tabs and carriage returns beside long strings included", () => {
    const spaced = `{"custom_id":"k",\t"method":"POST","url":"u","body":{"model":"m","x":\t"${"s".repeat(25)}",\r"y":\t\t"${"t".repeat(29)}\\n"}}`;
    const out: ScannedRequest = { customIdStart: 0, customIdEnd: 0, url: "", model: "", stream: false };
    const misses: string[] = [];
    for (const line of [spaced, ...VALID]) {
      const bytes = Buffer.from(line);
      for (let offset = 0; offset < 8; offset++) {
        // A buffer of its own, so `offset` is the line's alignment in memory.
        const b = Buffer.from(new ArrayBuffer(offset + bytes.length + 8), 0, offset + bytes.length + 8).fill(0x09);
        bytes.copy(b, offset);
        if (!scanRequestLine(b, offset, offset + bytes.length, out)) misses.push(`${offset}: ${line.slice(0, 60)}`);
      }
    }
    expect(misses).toEqual([]);
  });

  it("reads each buffer's own bytes when scans of two buffers interleave", () => {
    const line = (id: string, url: string) => Buffer.from(`${JSON.stringify({ custom_id: id, method: "POST", url, body: { model: `model-${id}` } })}\n`);
    const a = Buffer.concat([line("a1", "/v1/chat/completions"), line("a2", "/v1/embeddings")]);
    const b = Buffer.concat([line("bb1", "/v1/x"), line("bb2", "/v1/y")]);
    const sa = scanState(a);
    const sb = scanState(b);
    const read = (buf: Buffer, s: ReturnType<typeof scanState>, start: number) => {
      const out: ScannedRequest = { customIdStart: 0, customIdEnd: 0, url: "", model: "", stream: false };
      const end = buf.indexOf(10, start);
      if (!scanRequestLine(buf, start, end, out, s)) return null;
      return [buf.toString("utf8", out.customIdStart, out.customIdEnd), out.url, out.model];
    };
    const a2 = a.indexOf(10) + 1;
    const b2 = b.indexOf(10) + 1;
    expect([read(a, sa, 0), read(b, sb, 0), read(a, sa, a2), read(b, sb, b2)]).toEqual([
      ["a1", "/v1/chat/completions", "model-a1"],
      ["bb1", "/v1/x", "model-bb1"],
      ["a2", "/v1/embeddings", "model-a2"],
      ["bb2", "/v1/y", "model-bb2"],
    ]);
  });

  it("scans a line of many megabytes, and small lines after it", () => {
    const big = Buffer.from(JSON.stringify({ custom_id: "big", method: "POST", url: "u", body: { model: "m", messages: [{ role: "user", content: "w\"x ".repeat(3_000_000) }] } }));
    const small = Buffer.from(JSON.stringify({ custom_id: "small", method: "POST", url: "u", body: { model: "m2" } }));
    expect(big.length).toBeGreaterThan(12_000_000);
    expect([scan(big), scan(small), scan(big.subarray(0, big.length - 3))]).toEqual([
      { ok: true, customId: "big", url: "u", model: "m", stream: false },
      { ok: true, customId: "small", url: "u", model: "m2", stream: false },
      { ok: false },
    ]);
  });

  it("accepts none of the lines the contract rejects", () => {
    expect(INVALID.map((l) => contract(l).ok)).toEqual(INVALID.map(() => false));
    expect(INVALID.map((l) => scan(Buffer.from(l)).ok)).toEqual(INVALID.map(() => false));
  });

  it("leaves unusual valid lines to the contract", () => {
    expect(LEFT_TO_CONTRACT.map((l) => contract(l).ok)).toEqual(LEFT_TO_CONTRACT.map(() => true));
    expect(LEFT_TO_CONTRACT.map((l) => scan(Buffer.from(l)).ok)).toEqual(LEFT_TO_CONTRACT.map(() => false));
  });

  it("never accepts what the contract rejects, nor reads other fields, over 20,000 mutated lines", () => {
    const lines = corpus();
    const disagreements: string[] = [];
    let accepted = 0;
    let rejected = 0;
    for (const b of lines) {
      const fast = scan(b);
      const slow = contract(b.toString("utf8"));
      if (fast.ok) {
        accepted++;
        if (JSON.stringify(fast) !== JSON.stringify(slow)) disagreements.push(b.toString("utf8"));
      }
      if (!slow.ok) rejected++;
    }
    expect(disagreements).toEqual([]);
    // The corpus exercises both sides: many mutations stay valid, many do not.
    expect(accepted).toBeGreaterThan(500);
    expect(rejected).toBeGreaterThan(15_000);
  });
});

/** The validator without the fast path: per line, the contract (`checkRequestLine`), then the same checks. */
async function referenceValidate(bytes: Buffer, chunkSize: number) {
  const errors: BatchErrorEntry[] = [];
  const seen = new FingerprintSet();
  let requests = 0;
  let model: string | null = null;
  const starts: [number, number][] = [];
  for await (const line of readLines(Readable.from([bytes]))) {
    if (line.text.trim() === "") continue;
    if (requests % chunkSize === 0) starts.push([line.offset, line.lineNo]);
    requests++;
    const end = line.end - line.offset;
    const raw = bytes.subarray(line.offset, line.end);
    const lineEnd = raw[end - 1] === 10 ? end - 1 : end;
    const req = checkRequestLine(raw, 0, lineEnd > 0 && raw[lineEnd - 1] === 13 ? lineEnd - 1 : lineEnd, line.offset === 0);
    if (req === null) continue;
    if (!req.ok) {
      errors.push({ code: req.code, message: req.message, line: line.lineNo, param: req.param });
      continue;
    }
    if (!isSupportedEndpoint(req.url)) errors.push({ code: "unsupported_url", message: `URL '${req.url}' is not a supported endpoint.`, line: line.lineNo, param: "url" });
    else if (req.url !== "/v1/chat/completions") {
      errors.push({ code: "url_mismatch", message: `The url '${req.url}' does not match the batch endpoint '/v1/chat/completions'.`, line: line.lineNo, param: "url" });
    }
    if (req.stream === true) {
      errors.push({ code: "stream_unsupported", message: "Streaming ('stream': true) is not supported in batch requests.", line: line.lineNo, param: "body.stream" });
    }
    if (model === null) model = req.model;
    else if (req.model !== model) {
      errors.push({ code: "model_mismatch", message: `The model '${req.model}' differs from '${model}' on earlier lines; a batch serves one model.`, line: line.lineNo, param: "body.model" });
    }
    if (!seen.add(req.customId)) {
      errors.push({ code: "duplicate_custom_id", message: `The custom_id '${req.customId}' appears more than once in this file.`, line: line.lineNo, param: "custom_id" });
    }
  }
  return { requests, model, errors, starts };
}

describe("validateBatchInput with the fast path", () => {
  it("reports exactly what the contract alone reports, on the same mutated corpus as one file", async () => {
    const rand = mulberry32(11);
    const lines = corpus().filter((b) => b.indexOf(10) === -1);
    // Valid lines with distinct ids between the mutated ones, and CRLF endings here and there.
    const parts: Buffer[] = [];
    lines.forEach((b, i) => {
      parts.push(b, Buffer.from(rand() < 0.1 ? "\r\n" : "\n"));
      if (i % 3 === 0) parts.push(Buffer.from(`${JSON.stringify({ custom_id: `ok-${i}`, method: "POST", url: "/v1/chat/completions", body: { model: "m" } })}\n`));
    });
    const bytes = Buffer.concat(parts);
    const pieces: Buffer[] = [];
    for (let i = 0; i < bytes.length; ) {
      const n = 1 + Math.floor(rand() * 4096);
      pieces.push(bytes.subarray(i, i + n));
      i += n;
    }
    const limits = { chunkSize: 500, maxRequests: 1_000_000, maxBytes: 1 << 30, maxErrors: 1_000_000 };
    const fast = await validateBatchInput(readLineBlocks(Readable.from(pieces)), bytes.length, "/v1/chat/completions", limits);
    const ref = await referenceValidate(bytes, limits.chunkSize);
    expect(fast.requests).toBe(ref.requests);
    expect(fast.model).toBe(ref.model);
    expect(fast.errors).toEqual(ref.errors);
    expect(fast.chunks.map((c) => [c.startOffset, c.startLine])).toEqual(ref.starts);
    expect(ref.errors.length).toBeGreaterThan(5_000);
  });
});

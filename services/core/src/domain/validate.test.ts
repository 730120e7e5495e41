import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { readLineBlocks } from "../storage/lines.js";
import { FingerprintSet } from "./fingerprint-set.js";
import { validateBatchInput } from "./validate.js";

const line = (id: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ custom_id: id, method: "POST", url: "/v1/chat/completions", body: { model: "m", messages: [] }, ...extra });

/** The bytes in pieces of 1 to 16 bytes, so lines straddle the pieces a stream delivers in every way. */
function pieces(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0, k = 0; i < bytes.length; k++) {
    const n = 1 + ((k * 7) % 16);
    out.push(bytes.subarray(i, i + n));
    i += n;
  }
  return out;
}

function run(
  text: string,
  limits: Partial<{ chunkSize: number; maxRequests: number; maxBytes: number }> = {},
  endpoint: string | null = "/v1/chat/completions",
) {
  const bytes = Buffer.from(text);
  return validateBatchInput(readLineBlocks(Readable.from(pieces(bytes))), bytes.length, endpoint, {
    chunkSize: 2,
    maxRequests: 100,
    maxBytes: 1 << 20,
    ...limits,
  });
}

describe("validateBatchInput", () => {
  it("with anyModel, lines of any model, a non-string one or none pass, and the other rules still hold", async () => {
    const body = (model: unknown) => ({ body: model === undefined ? { messages: [] } : { model, messages: [] } });
    const text = [line("a", body("gpt-4")), line("b", body("other")), line("c", body(undefined)), line("d", body(7)), line("e", body("x\u0000y")), line("a"), line("f", { url: "/v1/embeddings" })].join("\n");
    const bytes = Buffer.from(text);
    const r = await validateBatchInput(readLineBlocks(Readable.from(pieces(bytes))), bytes.length, "/v1/chat/completions", { chunkSize: 2, maxRequests: 100, maxBytes: 1 << 20 }, { anyModel: true });
    expect(r.model).toBeNull();
    expect(r.requests).toBe(7);
    expect(r.errors.map((e) => [e.code, e.line, e.param])).toEqual([
      ["duplicate_custom_id", 6, "custom_id"],
      ["url_mismatch", 7, "url"],
    ]);
    const strict = await run(text);
    expect(strict.errors.map((e) => [e.code, e.line])).toEqual([
      ["model_mismatch", 2],
      ["missing_required_parameter", 3],
      ["invalid_request_line", 4],
      ["invalid_string", 5],
      ["model_mismatch", 6],
      ["duplicate_custom_id", 6],
      ["url_mismatch", 7],
      ["model_mismatch", 7],
    ]);
  });

  it("indexes chunks by byte offset and line, skipping blank lines", async () => {
    const text = [line("a"), line("b"), "", line("c"), line("d"), line("e")].join("\n") + "\n";
    const r = await run(text);
    expect(r.errors).toEqual([]);
    expect(r.requests).toBe(5);
    expect(r.model).toBe("m");
    expect(r.chunks.map((c) => [c.requestStart, c.requestCount, c.startLine])).toEqual([
      [0, 2, 1],
      [2, 2, 4],
      [4, 1, 6],
    ]);
    const bytes = Buffer.from(text);
    expect(r.chunks.map((c) => bytes.subarray(c.startOffset, c.endOffset).toString().split("\n").filter(Boolean).map((l) => JSON.parse(l).custom_id))).toEqual([
      ["a", "b"],
      ["c", "d"],
      ["e"],
    ]);
  });

  it("names the line of each bad input", async () => {
    const text = [
      line("a"),
      "{not json",
      JSON.stringify({ custom_id: "b", method: "POST", url: "/v1/chat/completions" }),
      line("a"),
      line("c", { url: "/v1/embeddings" }),
      line("d", { body: { model: "other" } }),
      line("e", { body: { model: "m", stream: true } }),
      line("f", { url: "/v1/images" }),
    ].join("\n");
    const r = await run(text);
    expect(r.errors.map((e) => [e.code, e.line, e.param])).toEqual([
      ["invalid_json_line", 2, null],
      ["missing_required_parameter", 3, "body"],
      ["duplicate_custom_id", 4, "custom_id"],
      ["url_mismatch", 5, "url"],
      ["model_mismatch", 6, "body.model"],
      ["stream_unsupported", 7, "body.stream"],
      ["unsupported_url", 8, "url"],
    ]);
  });

  it("enforces the empty-file, request-count and size limits", async () => {
    expect((await run("\n\n")).errors.map((e) => e.code)).toEqual(["empty_file"]);
    const three = [line("a"), line("b"), line("c")].join("\n");
    expect((await run(three, { maxRequests: 2 })).errors.map((e) => [e.code, e.line])).toEqual([["too_many_tasks", 3]]);
    expect((await run(three, { maxBytes: 10 })).errors.map((e) => [e.code, e.line])).toEqual([["file_too_large", null]]);
  });
});

describe("FingerprintSet", () => {
  it("detects every repeat among many distinct strings", () => {
    const set = new FingerprintSet(4);
    for (let i = 0; i < 50_000; i++) expect(set.add(`request-${i}`)).toBe(true);
    let repeats = 0;
    for (let i = 0; i < 50_000; i += 7) if (!set.add(`request-${i}`)) repeats++;
    expect(repeats).toBe(Math.ceil(50_000 / 7));
  });

  it("keeps every entry across a reserve and through growth past a short reservation", () => {
    const set = new FingerprintSet(10);
    for (let i = 0; i < 1_000; i++) expect(set.add(`a-${i}`)).toBe(true);
    set.reserve(5_000);
    set.reserve(100);
    for (let i = 0; i < 1_000; i++) expect(set.add(`a-${i}`)).toBe(false);
    for (let i = 0; i < 20_000; i++) expect(set.add(`b-${i}`)).toBe(true);
    let repeats = 0;
    for (let i = 0; i < 20_000; i++) if (!set.add(`b-${i}`) && !set.add(`a-${i % 1_000}`)) repeats++;
    expect(repeats).toBe(20_000);
  });

  describe("with no endpoint given (an upload's check)", () => {
    const at = (id: string, url: string) => JSON.stringify({ custom_id: id, method: "POST", url, body: { model: "m", input: "x" } });

    it("takes the first request line's url, after blank lines", async () => {
      const r = await run(["", "  ", at("a", "/v1/embeddings"), at("b", "/v1/embeddings")].join("\n"), {}, null);
      expect(r.endpoint).toBe("/v1/embeddings");
      expect(r.requests).toBe(2);
      expect(r.errors).toEqual([]);
    });

    it("holds every later line to it", async () => {
      const r = await run([at("a", "/v1/embeddings"), at("b", "/v1/chat/completions")].join("\n"), {}, null);
      expect(r.endpoint).toBe("/v1/embeddings");
      expect(r.errors).toEqual([
        { code: "url_mismatch", message: "The url '/v1/chat/completions' does not match the batch endpoint '/v1/embeddings'.", line: 2, param: "url" },
      ]);
    });

    it("falls back to /v1/chat/completions when the first line names no endpoint it serves, and reports that line", async () => {
      const r = await run([at("a", "/v1/nope"), at("b", "/v1/chat/completions"), "{oops", at("c", "/v1/embeddings")].join("\n"), {}, null);
      expect(r.endpoint).toBe("/v1/chat/completions");
      expect(r.errors.map((e) => [e.code, e.line])).toEqual([
        ["unsupported_url", 1],
        ["invalid_json_line", 3],
        ["url_mismatch", 4],
      ]);
    });

    it("reads the url of a first line the scanner leaves to JSON.parse", async () => {
      // An escape in custom_id sends the line down the slow path; its url still sets the endpoint.
      const first = '{"custom_id":"a\\u0062","method":"POST","url":"/v1/embeddings","body":{"model":"m","input":"x"}}';
      const r = await run([first, at("c", "/v1/embeddings")].join("\n"), {}, null);
      expect(r.endpoint).toBe("/v1/embeddings");
      expect(r.errors).toEqual([]);
      const bad = await run(["{oops", at("c", "/v1/embeddings")].join("\n"), {}, null);
      expect(bad.endpoint).toBe("/v1/chat/completions");
      expect(bad.errors.map((e) => [e.code, e.line])).toEqual([
        ["invalid_json_line", 1],
        ["url_mismatch", 2],
      ]);
    });
  });
});

describe("validateBatchInput: the text rules", () => {
  const limits = { chunkSize: 2, maxRequests: 100, maxBytes: 1 << 20 };
  const check = async (bytes: Buffer, extra: { maxLineBytes?: number } = {}) => {
    const r = await validateBatchInput(readLineBlocks(Readable.from(pieces(bytes))), bytes.length, "/v1/chat/completions", { ...limits, ...extra });
    return r.errors.map((e) => ({ code: e.code, line: e.line, param: e.param }));
  };
  const lines = (...ls: (string | Buffer)[]) => Buffer.concat(ls.flatMap((l) => [Buffer.from(l), Buffer.from("\n")]));
  const withId = (id: Buffer) => Buffer.concat([Buffer.from('{"custom_id":"'), id, Buffer.from('","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}')]);

  it("names invalid UTF-8 on its line, and two ids that differ only in bad bytes are no duplicate", async () => {
    const a = withId(Buffer.from([0x61, 0xff]));
    const b = withId(Buffer.from([0x61, 0xfe]));
    expect(await check(lines(line("x"), a, b, line("y")))).toEqual([
      { code: "invalid_utf8", line: 2, param: null },
      { code: "invalid_utf8", line: 3, param: null },
    ]);
  });

  it("names a BOM on line 1 only; the same bytes on a later line are invalid JSON", async () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    expect(await check(lines(Buffer.concat([bom, Buffer.from(line("a"))]), line("b"), Buffer.concat([bom, Buffer.from(line("c"))])))).toEqual([
      { code: "bom", line: 1, param: null },
      { code: "invalid_json_line", line: 3, param: null },
    ]);
  });

  it("refuses NUL and lone surrogates in the stored fields, and allows an escaped NUL elsewhere in the body", async () => {
    const r = await check(
      lines(
        '{"custom_id":"a\\u0000","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}',
        '{"custom_id":"b","method":"POST\u0000","url":"/v1/chat/completions","body":{"model":"m"}}',
        '{"custom_id":"c","method":"POST","url":"/v1/chat/completions\\u0000","body":{"model":"m"}}',
        '{"custom_id":"d","method":"POST","url":"/v1/chat/completions","body":{"model":"m\u0000"}}',
        '{"custom_id":"\\ud800","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}',
        '{"custom_id":"f","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"x\\u0000y"}]}}',
        '{"custom_id":"g","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"x\u0000y"}]}}',
        '{"custom_id":"\\ud83d\\ude00","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}',
      ),
    );
    expect(r).toEqual([
      { code: "invalid_string", line: 1, param: "custom_id" },
      { code: "invalid_string", line: 2, param: "method" },
      { code: "invalid_string", line: 3, param: "url" },
      { code: "invalid_string", line: 4, param: "body.model" },
      { code: "invalid_string", line: 5, param: "custom_id" },
      // A raw NUL outside the stored fields is what JSON forbids in a string.
      { code: "invalid_json_line", line: 7, param: null },
    ]);
  });

  it("refuses nesting deeper than 128 levels and accepts 128", async () => {
    const nested = (depth: number) => `{"custom_id":"n${depth}","method":"POST","url":"/v1/chat/completions","body":{"model":"m","x":${"[".repeat(depth - 2)}${"]".repeat(depth - 2)}}}`;
    expect(await check(lines(nested(128), nested(129)))).toEqual([{ code: "too_deeply_nested", line: 2, param: null }]);
  });

  it("names a line over maxLineBytes, whether a reader skipped it or it came whole in a block", async () => {
    const ok = line("a");
    const long = line("b".repeat(100));
    expect(await check(lines(ok, long, ok.replace('"a"', '"c"')), { maxLineBytes: ok.length + 1 })).toEqual([
      { code: "line_too_large", line: 2, param: null },
    ]);
    async function* skipped() {
      yield { bytes: Buffer.from(`${ok}\n`), offset: 0, lineNo: 1 };
      yield { bytes: Buffer.alloc(0), offset: ok.length + 1, lineNo: 2, oversizedLineBytes: 20_000_000 };
      yield { bytes: Buffer.from(`${line("c")}\n`), offset: ok.length + 20_000_001, lineNo: 3 };
    }
    const r = await validateBatchInput(skipped(), ok.length * 2 + 20_000_002, "/v1/chat/completions", { ...limits, maxBytes: 1 << 30 });
    expect(r.requests).toBe(3);
    expect(r.errors).toEqual([
      { code: "line_too_large", message: "This line is 20000000 bytes; the limit is 16777216 bytes per line.", line: 2, param: null },
    ]);
  });
});

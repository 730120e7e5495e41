import { toFile } from "openai/uploads";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { chatLine, postJson, startTestApi, waitForBatch, type TestApi } from "../support/api-harness.js";

// The text rules (invalid UTF-8, a byte order mark, NUL and lone surrogates in the stored fields,
// deep nesting) through the API: each file is uploaded, a batch is created on it, and the
// validation report must name every bad line with its code and param.

/** The lines as one JSONL file; strings are written as they are, Buffers byte for byte. */
function file(lines: (object | string | Buffer)[]): Buffer {
  const parts = lines.map((l) => (Buffer.isBuffer(l) ? l : Buffer.from(typeof l === "string" ? l : JSON.stringify(l))));
  return Buffer.concat(parts.flatMap((p) => [p, Buffer.from("\n")]));
}

/** A request line whose custom_id is the bytes `id`, quotes around them. */
function withIdBytes(id: Buffer): Buffer {
  const [head, tail] = JSON.stringify(chatLine("@")).split('"@"');
  return Buffer.concat([Buffer.from(`${head}"`), id, Buffer.from(`"${tail}`)]);
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

describe("the text rules on uploaded input files", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi();
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Uploads `bytes`, creates a batch on it and waits for validation to settle. */
  async function validate(bytes: Buffer) {
    const f = await t.client.files.create({ file: await toFile(bytes, "in.jsonl"), purpose: "batch" });
    const b = await t.client.batches.create({ input_file_id: f.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    return waitForBatch(t.client, b.id, ["failed", "in_progress"]);
  }

  async function failure(bytes: Buffer) {
    const b = await validate(bytes);
    expect(b.status).toBe("failed");
    return b.errors!.data!.map((e) => ({ code: e.code, line: e.line, param: e.param }));
  }

  /** A request line written as it stands: raw control bytes stay raw, `\\u0000` stays an escape. */
  const line = (fields: { id?: string; method?: string; url?: string; model?: string; content?: string }) =>
    `{"custom_id":"${fields.id ?? "x"}","method":"${fields.method ?? "POST"}","url":"${fields.url ?? "/v1/chat/completions"}",` +
    `"body":{"model":"${fields.model ?? "m"}","messages":[{"role":"user","content":"${fields.content ?? "hi"}"}]}}`;

  test("NUL, raw or escaped, and a lone surrogate in the stored fields; NUL in message content", async () => {
    expect(
      await failure(
        file([
          line({ id: "a\u0000" }),
          line({ id: "b\\u0000" }),
          line({ id: "c", method: "POST\u0000" }),
          line({ id: "d", method: "POST\\u0000" }),
          line({ id: "e", url: "/v1/chat/completions\u0000" }),
          line({ id: "f", url: "/v1/chat/completions\\u0000" }),
          line({ id: "g", model: "m\u0000" }),
          line({ id: "h", model: "m\\u0000" }),
          line({ id: "\\ud800" }),
          line({ id: "j", content: "x\\u0000y" }),
          line({ id: "k", content: "x\u0000y" }),
        ]),
      ),
    ).toEqual([
      { code: "invalid_string", line: 1, param: "custom_id" },
      { code: "invalid_string", line: 2, param: "custom_id" },
      { code: "invalid_string", line: 3, param: "method" },
      { code: "invalid_string", line: 4, param: "method" },
      { code: "invalid_string", line: 5, param: "url" },
      { code: "invalid_string", line: 6, param: "url" },
      { code: "invalid_string", line: 7, param: "body.model" },
      { code: "invalid_string", line: 8, param: "body.model" },
      { code: "invalid_string", line: 9, param: "custom_id" },
      // JSON allows no raw control byte in a string; an escaped NUL in content (line 10) is fine.
      { code: "invalid_json_line", line: 11, param: null },
    ]);
  });

  test("an escaped NUL in message content and a paired surrogate in custom_id validate", async () => {
    const b = await validate(file([line({ id: "a", content: "x\\u0000y" }), line({ id: "\\ud83d\\ude00" })]));
    expect(b.status).toBe("in_progress");
    expect(b.errors ?? null).toBeNull();
    expect(b.request_counts?.total).toBe(2);
  });

  test("invalid UTF-8 in the middle and at the end; ids that differ only in bad bytes are no duplicate", async () => {
    const endsBad = Buffer.concat([Buffer.from(JSON.stringify(chatLine("z"))), Buffer.from([0x20, 0xc3])]);
    const bytes = Buffer.concat([
      file([chatLine("a"), withIdBytes(Buffer.from([0x62, 0xff])), withIdBytes(Buffer.from([0x62, 0xfe])), chatLine("c")]),
      endsBad,
    ]);
    expect(await failure(bytes)).toEqual([
      { code: "invalid_utf8", line: 2, param: null },
      { code: "invalid_utf8", line: 3, param: null },
      { code: "invalid_utf8", line: 5, param: null },
    ]);
  });

  test("a BOM on line 1 is named; the same bytes on line 3 make that line invalid JSON", async () => {
    const b = await validate(
      file([Buffer.concat([BOM, Buffer.from(JSON.stringify(chatLine("a")))]), chatLine("b"), Buffer.concat([BOM, Buffer.from(JSON.stringify(chatLine("c")))])]),
    );
    expect(b.status).toBe("failed");
    expect(b.errors!.data!.map((e) => ({ code: e.code, line: e.line, param: e.param }))).toEqual([
      { code: "bom", line: 1, param: null },
      { code: "invalid_json_line", line: 3, param: null },
    ]);
    expect(b.errors!.data![0]!.message).toBe("The file starts with a UTF-8 byte order mark (BOM); save the file without it.");
  });

  test("nesting 129 levels deep fails, 128 passes", async () => {
    // The line's own object and its body are two levels; `x` holds the rest.
    const nested = (id: string, depth: number) => chatLine(id, { body: { x: JSON.parse(`${"[".repeat(depth - 2)}${"]".repeat(depth - 2)}`) } });
    expect(await failure(file([nested("a", 128), nested("b", 129), nested("c", 128)]))).toEqual([
      { code: "too_deeply_nested", line: 2, param: null },
    ]);
  });

  test("the upload check at complete answers 400 naming the first bad line's rule", async () => {
    const complete = async (bytes: Buffer) => {
      const p = (await postJson(t.url, "/v1/files/presign", { filename: "in.jsonl", purpose: "batch", bytes: bytes.length })).body as { id: string; upload_url: string };
      expect((await fetch(p.upload_url, { method: "PUT", body: bytes })).status).toBe(200);
      const done = await postJson(t.url, `/v1/files/${p.id}/complete`, {});
      expect(done.status).toBe(400);
      return (done.body as { error: unknown }).error;
    };
    expect(await complete(file([Buffer.concat([BOM, Buffer.from(JSON.stringify(chatLine("a")))])]))).toEqual({
      message: "Line 1: The file starts with a UTF-8 byte order mark (BOM); save the file without it.",
      type: "invalid_request_error",
      param: "file",
      code: "bom",
    });
    expect(await complete(file([chatLine("a"), withIdBytes(Buffer.from([0xc3]))]))).toMatchObject({ message: "Line 2: This line is not valid UTF-8.", code: "invalid_utf8" });
    expect(await complete(file([chatLine("a"), chatLine("b"), line({ id: "c", url: "/v1/chat/completions\\u0000" })]))).toMatchObject({
      message: "Line 3: Invalid value for 'url': it contains a NUL character (U+0000) or a lone surrogate.",
      code: "invalid_string",
    });
  });
});

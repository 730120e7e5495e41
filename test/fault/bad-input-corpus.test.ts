import OpenAI from "openai";
import { toFile } from "openai/uploads";
import { describe, expect, it } from "vitest";
import { waitForBatch } from "../support/api-harness.js";
import { faultSuite } from "../support/fault-suite.js";

// A corpus of hostile input files, each uploaded and batched through the API with the official
// SDK while one real agent runs: every batch must fail with its bad line named, none may stay in
// `validating`, and the same agent process must then run a normal batch to the end.

const MODEL = "barge-sim-1";
const MAX_LINE_BYTES = 4096;
const MAX_REQUESTS = 5;
const MAX_FILE_BYTES = 8192;

/** A request line written as it stands: raw bytes stay raw, `\\u0000` stays an escape. */
const line = (fields: { id?: string; method?: string | null; url?: string; model?: string; body?: string | null }) =>
  `{"custom_id":"${fields.id ?? "x"}",${fields.method === null ? "" : `"method":"${fields.method ?? "POST"}",`}"url":"${fields.url ?? "/v1/chat/completions"}"` +
  (fields.body === null ? "}" : `,"body":${fields.body ?? `{"model":"${fields.model ?? MODEL}","messages":[{"role":"user","content":"hi"}]}`}}`);

/** A well-formed line with its own custom_id. */
const good = (id: string) => line({ id });

/** The lines as one JSONL file; strings are written as they are, Buffers byte for byte. */
function file(lines: (string | Buffer)[]): Buffer {
  return Buffer.concat(lines.flatMap((l) => [Buffer.isBuffer(l) ? l : Buffer.from(l), Buffer.from("\n")]));
}

/** A line whose custom_id is the bytes `id`. */
function withIdBytes(id: Buffer): Buffer {
  const [head, tail] = good("@").split('"@"');
  return Buffer.concat([Buffer.from(`${head}"`), id, Buffer.from(`"${tail}`)]);
}

type Expected = { code: string; line: number | null; param: string | null };

/**
 * Each case: its file, and the exact `errors.data` (code, line, param) the batch must fail with.
 */
const CASES: { name: string; bytes: Buffer; errors: Expected[] }[] = [
  { name: "invalid JSON", bytes: file([good("a"), `{"custom_id":"b",`, good("c")]), errors: [{ code: "invalid_json_line", line: 2, param: null }] },
  { name: "raw NUL in custom_id", bytes: file([good("a"), good("b"), line({ id: "c\u0000" })]), errors: [{ code: "invalid_string", line: 3, param: "custom_id" }] },
  { name: "escaped NUL in custom_id", bytes: file([good("a"), line({ id: "b\\u0000" }), good("c")]), errors: [{ code: "invalid_string", line: 2, param: "custom_id" }] },
  { name: "escaped NUL in body.model", bytes: file([good("a"), line({ id: "b", model: `${MODEL}\\u0000` }), good("c")]), errors: [{ code: "invalid_string", line: 2, param: "body.model" }] },
  { name: "lone surrogate in custom_id", bytes: file([good("a"), good("b"), good("c"), line({ id: "d\\ud800" })]), errors: [{ code: "invalid_string", line: 4, param: "custom_id" }] },
  { name: "invalid UTF-8", bytes: file([good("a"), withIdBytes(Buffer.from([0x62, 0xff, 0xfe])), good("c")]), errors: [{ code: "invalid_utf8", line: 2, param: null }] },
  { name: "BOM on line 1", bytes: file([Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(good("a"))]), good("b")]), errors: [{ code: "bom", line: 1, param: null }] },
  {
    name: "nested 129 deep",
    // The line's object and its body are two levels; 127 arrays make 129.
    bytes: file([good("a"), line({ id: "b", body: `{"model":"${MODEL}","messages":[],"x":${"[".repeat(127)}${"]".repeat(127)}}` }), good("c")]),
    errors: [{ code: "too_deeply_nested", line: 2, param: null }],
  },
  {
    name: "a line over MAX_LINE_BYTES",
    bytes: file([good("a"), good("b"), line({ id: "c", body: `{"model":"${MODEL}","messages":[{"role":"user","content":"${"x".repeat(MAX_LINE_BYTES)}"}]}` }), good("d")]),
    errors: [{ code: "line_too_large", line: 3, param: null }],
  },
  { name: "duplicate custom_id", bytes: file([good("a"), good("b"), good("a")]), errors: [{ code: "duplicate_custom_id", line: 3, param: "custom_id" }] },
  { name: "url of another endpoint", bytes: file([good("a"), line({ id: "b", url: "/v1/embeddings" }), good("c")]), errors: [{ code: "url_mismatch", line: 2, param: "url" }] },
  { name: "missing method", bytes: file([good("a"), line({ id: "b", method: null }), good("c")]), errors: [{ code: "missing_required_parameter", line: 2, param: "method" }] },
  { name: "unsupported endpoint", bytes: file([good("a"), good("b"), line({ id: "c", url: "/v1/images/generations" })]), errors: [{ code: "unsupported_url", line: 3, param: "url" }] },
  { name: "body not an object", bytes: file([good("a"), line({ id: "b", body: `"hello"` }), good("c")]), errors: [{ code: "invalid_request_line", line: 2, param: "body" }] },
  { name: "empty custom_id", bytes: file([good("a"), line({ id: "" }), good("c")]), errors: [{ code: "invalid_request_line", line: 2, param: "custom_id" }] },
  {
    name: "over MAX_REQUESTS_PER_BATCH",
    bytes: file(Array.from({ length: MAX_REQUESTS + 1 }, (_, i) => good(`r-${i}`))),
    errors: [{ code: "too_many_tasks", line: MAX_REQUESTS + 1, param: null }],
  },
  { name: "mixed models", bytes: file([good("a"), good("b"), line({ id: "c", model: "barge-sim-2" })]), errors: [{ code: "model_mismatch", line: 3, param: "body.model" }] },
  { name: "method other than POST", bytes: file([good("a"), line({ id: "b", method: "GET" }), good("c")]), errors: [{ code: "invalid_request_line", line: 2, param: "method" }] },
  { name: "missing body", bytes: file([good("a"), good("b"), line({ id: "c", body: null })]), errors: [{ code: "missing_required_parameter", line: 3, param: "body" }] },
  { name: "non-object line", bytes: file([good("a"), `["a","b"]`, good("c")]), errors: [{ code: "invalid_request_line", line: 2, param: null }] },
  { name: "empty file", bytes: Buffer.alloc(0), errors: [{ code: "empty_file", line: null, param: null }] },
];

describe("fault: the bad-input corpus", () => {
  const suite = faultSuite();
  const env = { MAX_LINE_BYTES: String(MAX_LINE_BYTES), MAX_REQUESTS_PER_BATCH: String(MAX_REQUESTS), MAX_FILE_BYTES: String(MAX_FILE_BYTES), CHUNK_SIZE: "10", AGENT_POLL_MS: "50", API_POLL_MS: "50", LEASE_SECONDS: "5" };

  it(`fails each of ${CASES.length} bad files with its line named, then the same agent runs a normal batch in input order`, async () => {
    const ctx = await suite.context(env);
    const sim = await suite.sim({ models: [MODEL] });
    const api = await suite.api(ctx);
    const agent = suite.children.agent({ ...ctx.env, VLLM_URL: sim.url }, "corpus");
    const client = new OpenAI({ baseURL: `${api.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const submit = async (bytes: Buffer, name: string) => {
      const f = await client.files.create({ file: await toFile(bytes, `${name}.jsonl`), purpose: "batch" });
      return client.batches.create({ input_file_id: f.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    };

    const seen: Record<string, { status: string; errors: Expected[] }> = {};
    const batchIds: string[] = [];
    for (const c of CASES) {
      const created = await submit(c.bytes, c.name.replaceAll(" ", "-"));
      batchIds.push(created.id);
      const b = await waitForBatch(client, created.id, ["failed", "in_progress", "completed"]);
      seen[c.name] = { status: b.status, errors: (b.errors?.data ?? []).map((e) => ({ code: e.code!, line: e.line ?? null, param: e.param ?? null })) };
      if (c.name === "a line over MAX_LINE_BYTES") {
        expect(b.errors?.data?.[0]?.message).toContain(`the limit is ${MAX_LINE_BYTES} bytes per line.`);
      }
      if (c.name === "missing method") {
        expect(b.errors?.data?.[0]?.message).toBe("Missing required parameter 'method'.");
      }
      if (c.name === "over MAX_REQUESTS_PER_BATCH") {
        expect(b.errors?.data?.[0]?.message).toBe(`The input file has more than the maximum of ${MAX_REQUESTS} requests per batch.`);
      }
      if (c.name === "non-object line") {
        expect(b.errors?.data?.[0]?.message).toBe("This line is not a request object: Invalid input: expected object, received array.");
      }
      if (c.name === "BOM on line 1") {
        expect(b.errors?.data?.[0]?.message).toBe("The file starts with a UTF-8 byte order mark (BOM); save the file without it.");
      }
    }
    expect(seen).toEqual(Object.fromEntries(CASES.map((c) => [c.name, { status: "failed", errors: c.errors }])));
    // No bad batch is left validating, and none reached the queue.
    const stuck = await ctx.db.selectFrom("batches").select(["id", "status"]).where("id", "in", batchIds).where("status", "!=", "failed").execute();
    expect(stuck).toEqual([]);
    expect(await ctx.db.selectFrom("chunks").select("batch_id").where("batch_id", "in", batchIds).execute()).toEqual([]);

    // A file over MAX_FILE_BYTES never becomes a file: the upload is cut with 413 as it streams in.
    const filesBefore = await ctx.db.selectFrom("files").select("id").execute();
    const big = file(Array.from({ length: Math.ceil(MAX_FILE_BYTES / good("big-0").length) + 1 }, (_, i) => good(`big-${i}`)));
    expect(big.length).toBeGreaterThan(MAX_FILE_BYTES);
    const refused = await client.files.create({ file: await toFile(big, "big.jsonl"), purpose: "batch" }).then(() => undefined, (e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.APIError);
    expect(refused).toMatchObject({ status: 413, code: "file_too_large", param: "file", message: expect.stringContaining(`The file is larger than the maximum of ${MAX_FILE_BYTES} bytes.`) });
    expect(await ctx.db.selectFrom("files").select("id").execute()).toEqual(filesBefore);

    const normal = await submit(file([good("n-1"), good("n-2"), good("n-3")]), "normal");
    const done = await waitForBatch(client, normal.id, ["completed", "failed"], 60_000);
    expect([done.status, done.request_counts]).toEqual(["completed", { total: 3, completed: 3, failed: 0 }]);
    const output = (await (await client.files.content(done.output_file_id!)).text()).trim().split("\n");
    expect(output.map((l) => (JSON.parse(l) as { custom_id: string }).custom_id)).toEqual(["n-1", "n-2", "n-3"]);

    // The same agent process did it all: still running, and every log line it wrote carries its PID.
    expect([agent.process.exitCode, agent.process.signalCode]).toEqual([null, null]);
    const logged = agent.logs();
    expect(logged.length).toBeGreaterThan(0);
    expect(new Set(logged.map((l) => l.pid))).toEqual(new Set([agent.pid]));
  });
});

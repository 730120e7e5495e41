import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import OpenAI from "openai";
import { toFile } from "openai/uploads";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { call, chatLine, jsonl, postJson, startTestApi, waitForBatch, type TestApi } from "../support/api-harness.js";

/** Uploads `text`, creates a batch on it and waits for validation to settle. */
async function validate(t: TestApi, text: string, endpoint: "/v1/chat/completions" | "/v1/embeddings" = "/v1/chat/completions") {
  const f = await t.client.files.create({ file: await toFile(Buffer.from(text), "in.jsonl"), purpose: "batch" });
  const b = await t.client.batches.create({ input_file_id: f.id, endpoint, completion_window: "24h" });
  expect(b.status).toBe("validating");
  return waitForBatch(t.client, b.id, ["failed", "in_progress"]);
}

/** The `{code, line}` (and param) of each validation error of a batch that must have failed. */
async function failure(t: TestApi, text: string) {
  const b = await validate(t, text);
  expect(b.status).toBe("failed");
  expect(b.failed_at).not.toBeNull();
  expect(await t.ctx.db.selectFrom("chunks").select("idx").where("batch_id", "=", b.id).execute()).toEqual([]);
  return b.errors!.data!.map((e) => ({ code: e.code, line: e.line, param: e.param }));
}

describe("validation of input files", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi({ MAX_REQUESTS_PER_BATCH: "5", MAX_FILE_BYTES: "4096" });
  });
  afterAll(async () => {
    await t?.close();
  });

  test("malformed JSON", async () => {
    expect(await failure(t, jsonl([chatLine("a"), '{"custom_id": "b", "method": ', chatLine("c")]))).toEqual([
      { code: "invalid_json_line", line: 2, param: null },
    ]);
  });

  test("missing required field", async () => {
    const { custom_id: _, ...noId } = chatLine("b");
    expect(await failure(t, jsonl([chatLine("a"), noId]))).toEqual([{ code: "missing_required_parameter", line: 2, param: "custom_id" }]);
  });

  test("wrongly typed field is not reported as missing", async () => {
    expect(await failure(t, jsonl([chatLine("a"), { ...chatLine("b"), custom_id: 7 }]))).toEqual([
      { code: "invalid_request_line", line: 2, param: "custom_id" },
    ]);
  });

  test("duplicate custom_id names the second occurrence", async () => {
    expect(await failure(t, jsonl([chatLine("a"), chatLine("b"), chatLine("a")]))).toEqual([
      { code: "duplicate_custom_id", line: 3, param: "custom_id" },
    ]);
  });

  test("mixed urls", async () => {
    expect(await failure(t, jsonl([chatLine("a"), chatLine("b", { url: "/v1/embeddings" })]))).toEqual([
      { code: "url_mismatch", line: 2, param: "url" },
    ]);
  });

  test("mixed models", async () => {
    expect(await failure(t, jsonl([chatLine("a"), chatLine("b"), chatLine("c", { model: "other" })]))).toEqual([
      { code: "model_mismatch", line: 3, param: "body.model" },
    ]);
  });

  test("unsupported endpoint in a line", async () => {
    expect(await failure(t, jsonl([chatLine("a"), chatLine("b", { url: "/v1/images/generations" })]))).toEqual([
      { code: "unsupported_url", line: 2, param: "url" },
    ]);
  });

  test("stream: true", async () => {
    expect(await failure(t, jsonl([chatLine("a", { body: { stream: true } })]))).toEqual([
      { code: "stream_unsupported", line: 1, param: "body.stream" },
    ]);
  });

  test("empty file", async () => {
    expect(await failure(t, "")).toEqual([{ code: "empty_file", line: null, param: null }]);
  });

  test("more requests than MAX_REQUESTS_PER_BATCH", async () => {
    const lines = Array.from({ length: 6 }, (_, i) => chatLine(`r${i}`));
    expect(await failure(t, jsonl(lines))).toEqual([{ code: "too_many_tasks", line: 6, param: null }]);
    // Exactly the maximum is fine.
    const ok = await validate(t, jsonl(lines.slice(0, 5)));
    expect(ok.status).toBe("in_progress");
    expect(ok.request_counts).toEqual({ total: 5, completed: 0, failed: 0 });
  });

  test("a file over MAX_FILE_BYTES is rejected while uploading, and nothing is stored", async () => {
    const before = (await t.ctx.s3.send(new ListObjectsV2Command({ Bucket: t.ctx.bucket }))).KeyCount;
    const text = "x".repeat(4097);
    const err = await t.client.files.create({ file: await toFile(Buffer.from(text), "big.jsonl"), purpose: "batch" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err).toMatchObject({ status: 413, type: "invalid_request_error", code: "file_too_large", param: "file" });
    // The one-shot form goes through the same streaming limit.
    const form = new FormData();
    form.set("model", "m");
    form.set("file", new Blob([text]), "big.jsonl");
    const r = await call(t.url, "/v1/batches", { method: "POST", body: form });
    expect(r.status).toBe(413);
    expect(r.body.error).toMatchObject({ type: "invalid_request_error", code: "file_too_large", param: "file" });
    expect((await t.ctx.s3.send(new ListObjectsV2Command({ Bucket: t.ctx.bucket }))).KeyCount).toBe(before);
    expect((await t.client.batches.list()).data.every((b) => b.status !== "validating")).toBe(true);
  });

  test("a file of exactly MAX_FILE_BYTES is accepted", async () => {
    const f = await t.client.files.create({ file: await toFile(Buffer.alloc(4096, "y"), "edge.jsonl"), purpose: "batch" });
    expect(f.bytes).toBe(4096);
  });

  test("a file over MAX_FILE_BYTES is rejected by presign-complete", async () => {
    // Declared small: s3rver does not hold a PUT to its signed Content-Length, so complete must catch it.
    const p = await postJson(t.url, "/v1/files/presign", { filename: "big.jsonl", purpose: "batch", bytes: 10 });
    expect(p.status).toBe(200);
    const put = await fetch(p.body.upload_url, { method: "PUT", body: "z".repeat(5000) });
    expect(put.status).toBe(200);
    const done = await postJson(t.url, `/v1/files/${p.body.id}/complete`, {});
    expect(done.status).toBe(400);
    expect(done.body.error).toMatchObject({ type: "invalid_request_error", code: "file_too_large", param: "file" });
    expect((await t.client.files.retrieve(p.body.id)).status).toBe("error");
    const content = await call(t.url, `/v1/files/${p.body.id}/content`);
    expect(content.status).toBe(404);
  });

  test("one-shot form's model decides: lines naming other models, mixed or none, validate and the chunks take the form's model", async () => {
    const noModel = { custom_id: "c", method: "POST", url: "/v1/chat/completions", body: { messages: [] } };
    const numeric = { custom_id: "d", method: "POST", url: "/v1/chat/completions", body: { model: 7, messages: [] } };
    const form = new FormData();
    form.set("model", "wanted");
    form.set("file", new Blob([jsonl([chatLine("a", { model: "gpt-4" }), chatLine("b", { model: "other" }), noModel, numeric])]), "in.jsonl");
    const r = await call(t.url, "/v1/batches", { method: "POST", body: form });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: "validating", model: "wanted" });
    const b = await waitForBatch(t.client, r.body.id, ["failed", "in_progress"]);
    expect(b).toMatchObject({ status: "in_progress", model: "wanted", errors: null, request_counts: { total: 4, completed: 0, failed: 0 } });
    const row = await t.ctx.db.selectFrom("batches").select(["model", "model_override"]).where("id", "=", b.id).executeTakeFirstOrThrow();
    expect(row).toEqual({ model: "wanted", model_override: true });
    const chunks = await t.ctx.db.selectFrom("chunks").select("model").where("batch_id", "=", b.id).execute();
    expect(chunks).toEqual([{ model: "wanted" }]);
  });

  test("without a form model the lines' model rules stay: mixed models fail, a missing one is missing_required_parameter", async () => {
    const noModel = { custom_id: "c", method: "POST", url: "/v1/chat/completions", body: { messages: [] } };
    expect(await failure(t, jsonl([chatLine("a", { model: "gpt-4" }), chatLine("b", { model: "other" }), noModel]))).toEqual([
      { code: "model_mismatch", line: 2, param: "body.model" },
      { code: "missing_required_parameter", line: 3, param: "body.model" },
    ]);
  });
});

describe("chunk index", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi({ CHUNK_SIZE: "5000" });
  });
  afterAll(async () => {
    await t?.close();
  });

  test("12,003 requests become three chunks whose byte ranges hold exactly their lines", async () => {
    const lines = Array.from({ length: 12_003 }, (_, i) => JSON.stringify(chatLine(`req-${i}`)));
    const text = lines.join("\n") + "\n";
    const offsetOf = (line: number) => lines.slice(0, line).reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);

    const b = await validate(t, text);
    expect(b.status).toBe("in_progress");
    expect(b.model).toBe("m");
    expect(b.request_counts).toEqual({ total: 12_003, completed: 0, failed: 0 });

    const chunks = await t.ctx.db
      .selectFrom("chunks")
      .select(["idx", "request_start", "request_count", "start_line", "start_offset", "end_offset", "status", "model"])
      .where("batch_id", "=", b.id)
      .orderBy("idx")
      .execute();
    expect(chunks).toEqual([
      { idx: 0, request_start: 0, request_count: 5000, start_line: 1, start_offset: 0, end_offset: offsetOf(5000), status: "queued", model: "m" },
      { idx: 1, request_start: 5000, request_count: 5000, start_line: 5001, start_offset: offsetOf(5000), end_offset: offsetOf(10_000), status: "queued", model: "m" },
      { idx: 2, request_start: 10_000, request_count: 2003, start_line: 10_001, start_offset: offsetOf(10_000), end_offset: Buffer.byteLength(text), status: "queued", model: "m" },
    ]);

    const file = await t.ctx.db.selectFrom("files").select("s3_key").where("id", "=", b.input_file_id).executeTakeFirstOrThrow();
    for (const c of chunks) {
      const res = await t.ctx.s3.send(
        new GetObjectCommand({ Bucket: t.ctx.bucket, Key: file.s3_key, Range: `bytes=${c.start_offset}-${c.end_offset - 1}` }),
      );
      const got = (await res.Body!.transformToString()).split("\n");
      expect(got.pop()).toBe("");
      expect(got.length).toBe(c.request_count);
      expect(JSON.parse(got[0]!).custom_id).toBe(`req-${c.request_start}`);
      expect(JSON.parse(got[got.length - 1]!).custom_id).toBe(`req-${c.request_start + c.request_count - 1}`);
    }
  });
});

describe("malformed API calls", () => {
  let t: TestApi;
  let fileId: string;
  beforeAll(async () => {
    t = await startTestApi();
    fileId = (await t.client.files.create({ file: await toFile(Buffer.from(jsonl([chatLine("a")])), "in.jsonl"), purpose: "batch" })).id;
  });
  afterAll(async () => {
    await t?.close();
  });

  const create = (body: unknown) => postJson(t.url, "/v1/batches", body);
  const valid = () => ({ input_file_id: fileId, endpoint: "/v1/chat/completions", completion_window: "24h" });

  test("a body that is not JSON", async () => {
    const r = await create('{"input_file_id": ');
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: "invalid_request_error", param: null, code: "invalid_json" });
  });

  test("missing input_file_id", async () => {
    const { input_file_id: _, ...body } = valid();
    const r = await create(body);
    expect(r.status).toBe(400);
    expect(r.body.error).toEqual({
      message: "Missing required parameter: 'input_file_id'.",
      type: "invalid_request_error",
      param: "input_file_id",
      code: "missing_required_parameter",
    });
  });

  test("a completion_window other than 24h", async () => {
    const r = await create({ ...valid(), completion_window: "48h" });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: "invalid_request_error", param: "completion_window", code: "invalid_value" });
  });

  test("an unsupported endpoint", async () => {
    const r = await create({ ...valid(), endpoint: "/v1/images/generations" });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: "invalid_request_error", param: "endpoint", code: "invalid_value" });
  });

  test("metadata over OpenAI's limits", async () => {
    const seventeen = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"]));
    const sixteen = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, "v"]));
    for (const metadata of [seventeen, { ["k".repeat(65)]: "v" }, { k: "v".repeat(513) }, { k: 1 }]) {
      const r = await create({ ...valid(), metadata });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ type: "invalid_request_error", param: "metadata", code: "invalid_value" });
    }
    const ok = await create({ ...valid(), metadata: sixteen });
    expect(ok.status).toBe(200);
    expect(ok.body.metadata).toEqual(sixteen);
  });

  test("an unknown batch id is NotFoundError through the SDK", async () => {
    const err = await t.client.batches.retrieve("batch_nope").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err).toMatchObject({ status: 404, type: "invalid_request_error", param: "batch_id", code: "not_found" });
    const cancel = await t.client.batches.cancel("batch_nope").catch((e: unknown) => e);
    expect(cancel).toBeInstanceOf(OpenAI.NotFoundError);
  });

  test("an unknown input file id", async () => {
    const err = await t.client.batches
      .create({ input_file_id: "file-nope", endpoint: "/v1/chat/completions", completion_window: "24h" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err).toMatchObject({ status: 404, type: "invalid_request_error", param: "input_file_id", code: "not_found" });
  });

  test("list parameters out of range", async () => {
    for (const [path, param] of [
      ["/v1/batches?limit=0", "limit"],
      ["/v1/batches?limit=101", "limit"],
      ["/v1/batches?status=done", "status"],
      ["/v1/files?limit=10001", "limit"],
      ["/v1/files?order=up", "order"],
    ] as const) {
      const r = await call(t.url, path);
      expect(r.status, path).toBe(400);
      expect(r.body.error, path).toMatchObject({ type: "invalid_request_error", param, code: "invalid_value" });
    }
  });

  test("a wrongly typed parameter", async () => {
    const r = await create({ ...valid(), priority: "high" });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: "invalid_request_error", param: "priority", code: "invalid_type" });
  });
});

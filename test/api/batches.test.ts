import { PutObjectCommand } from "@aws-sdk/client-s3";
import OpenAI, { APIError } from "openai";
import { toFile } from "openai/uploads";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { call, chatLine, jsonl, startBareApi, startTestApi, waitForBatch, type TestApi } from "../support/api-harness.js";

async function uploadFile(t: TestApi, lines: number, prefix = "r") {
  const text = jsonl(Array.from({ length: lines }, (_, i) => chatLine(`${prefix}${i}`)));
  return t.client.files.create({ file: await toFile(Buffer.from(text), "in.jsonl"), purpose: "batch" });
}

function createBatch(t: TestApi, inputFileId: string, metadata?: Record<string, string>) {
  return t.client.batches.create({ input_file_id: inputFileId, endpoint: "/v1/chat/completions", completion_window: "24h", ...(metadata ? { metadata } : {}) });
}

function chunkStatuses(t: TestApi, batchId: string) {
  return t.ctx.db.selectFrom("chunks").select(["idx", "status", "request_count"]).where("batch_id", "=", batchId).orderBy("idx").execute();
}

describe("batches", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi({ CHUNK_SIZE: "4" });
  });
  afterAll(async () => {
    await t?.close();
  });

  test("create answers a validating Batch object; the validator moves it to in_progress with chunks", async () => {
    const f = await uploadFile(t, 10);
    const b = await createBatch(t, f.id, { team: "search" });
    expect(b.id).toMatch(/^batch_[0-9a-z]{24}$/);
    expect(b).toMatchObject({
      object: "batch",
      endpoint: "/v1/chat/completions",
      input_file_id: f.id,
      completion_window: "24h",
      status: "validating",
      errors: null,
      output_file_id: null,
      error_file_id: null,
      in_progress_at: null,
      request_counts: { total: 0, completed: 0, failed: 0 },
      metadata: { team: "search" },
      output_location: null,
      results_url: null,
    });
    expect(b.expires_at! - b.created_at).toBe(24 * 3600);

    const running = await waitForBatch(t.client, b.id, ["in_progress", "failed"]);
    expect(running).toMatchObject({ status: "in_progress", model: "m", request_counts: { total: 10, completed: 0, failed: 0 } });
    expect(running.in_progress_at).not.toBeNull();
    expect(await chunkStatuses(t, b.id)).toEqual([
      { idx: 0, status: "queued", request_count: 4 },
      { idx: 1, status: "queued", request_count: 4 },
      { idx: 2, status: "queued", request_count: 2 },
    ]);
    expect(await t.client.batches.retrieve(b.id)).toEqual(running);
  });

  test("list pages newest first; the after cursor and SDK auto-pagination see each batch once", async () => {
    const other = await startBareApi();
    try {
      const f = (await other.client.files.create({ file: await toFile(Buffer.from(jsonl([chatLine("a")])), "in.jsonl"), purpose: "batch" })).id;
      const created: string[] = [];
      for (let i = 0; i < 5; i++) {
        created.push((await other.client.batches.create({ input_file_id: f, endpoint: "/v1/chat/completions", completion_window: "24h" })).id);
      }
      const newestFirst = [...created].reverse();

      const p1 = await call(other.url, "/v1/batches?limit=2");
      expect(p1.status).toBe(200);
      expect(p1.body).toMatchObject({ object: "list", has_more: true, first_id: newestFirst[0], last_id: newestFirst[1] });
      expect(p1.body.data.map((b: { id: string }) => b.id)).toEqual(newestFirst.slice(0, 2));

      const walked: string[] = [];
      let after: string | null = null;
      for (let page = 0; page < 5; page++) {
        const r: { body: { data: { id: string }[]; has_more: boolean; last_id: string } } = await call(
          other.url,
          `/v1/batches?limit=2${after ? `&after=${after}` : ""}`,
        );
        walked.push(...r.body.data.map((b) => b.id));
        if (!r.body.has_more) break;
        after = r.body.last_id;
      }
      expect(walked).toEqual(newestFirst);

      const auto: string[] = [];
      for await (const b of other.client.batches.list({ limit: 2 })) auto.push(b.id);
      expect(auto).toEqual(newestFirst);

      const dflt = await other.client.batches.list();
      expect(dflt.data.map((b) => b.id)).toEqual(newestFirst);
      expect(dflt.has_more).toBe(false);
    } finally {
      await other.close();
    }
  });

  test("list filters by status", async () => {
    const all = await call(t.url, "/v1/batches?limit=100");
    const running = await call(t.url, "/v1/batches?limit=100&status=in_progress");
    expect(running.body.data.length).toBeGreaterThan(0);
    expect(running.body.data.every((b: { status: string }) => b.status === "in_progress")).toBe(true);
    expect(running.body.data.map((b: { id: string }) => b.id)).toEqual(
      all.body.data.filter((b: { status: string }) => b.status === "in_progress").map((b: { id: string }) => b.id),
    );
  });

  test("cancel of an in_progress batch: cancelling, queued chunks cancelled; a second cancel is harmless", async () => {
    const b = await createBatch(t, (await uploadFile(t, 9, "c")).id);
    await waitForBatch(t.client, b.id, ["in_progress"]);
    const c = await t.client.batches.cancel(b.id);
    expect(c).toMatchObject({ id: b.id, status: "cancelling", cancelled_at: null });
    expect(c.cancelling_at).not.toBeNull();
    expect(await chunkStatuses(t, b.id)).toEqual([
      { idx: 0, status: "cancelled", request_count: 4 },
      { idx: 1, status: "cancelled", request_count: 4 },
      { idx: 2, status: "cancelled", request_count: 1 },
    ]);
    const again = await t.client.batches.cancel(b.id);
    expect(again).toMatchObject({ status: "cancelling", cancelling_at: c.cancelling_at });
  });

  test("cancel of a finished batch is a 409 conflict", async () => {
    const bad = await t.client.files.create({ file: await toFile(Buffer.from("nope\n"), "bad.jsonl"), purpose: "batch" });
    const b = await createBatch(t, bad.id);
    await waitForBatch(t.client, b.id, ["failed"]);
    const err = await t.client.batches.cancel(b.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.ConflictError);
    expect(err).toMatchObject({ status: 409, type: "invalid_request_error", param: null, code: "batch_not_cancellable" });
    expect((err as APIError).message).toContain("Batch is failed and cannot be cancelled.");
    expect((err as APIError).headers?.get("x-should-retry")).toBe("false");
  });

  test("one-shot multipart create uploads the file and starts the batch with its model", async () => {
    const text = jsonl([chatLine("o1", { model: "llama" }), chatLine("o2", { model: "llama" })]);
    const form = new FormData();
    form.set("model", "llama");
    form.set("metadata", JSON.stringify({ source: "one-shot" }));
    form.set("file", new Blob([text]), "oneshot.jsonl");
    const r = await call(t.url, "/v1/batches", { method: "POST", body: form });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      object: "batch",
      status: "validating",
      model: "llama",
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
      metadata: { source: "one-shot" },
    });
    const b = await waitForBatch(t.client, r.body.id, ["in_progress", "failed"]);
    expect(b).toMatchObject({ status: "in_progress", model: "llama", request_counts: { total: 2, completed: 0, failed: 0 } });
    const f = await t.client.files.retrieve(b.input_file_id);
    expect(f).toMatchObject({ filename: "oneshot.jsonl", purpose: "batch", status: "processed", bytes: Buffer.byteLength(text) });
    expect(Buffer.from(await (await t.client.files.content(f.id)).arrayBuffer()).toString()).toBe(text);
  });

  test("one-shot form fields are validated, and a rejected form leaves no file", async () => {
    const before = (await call(t.url, "/v1/files")).body.data.length;
    const cases: [Record<string, string>, string, string][] = [
      [{ completion_window: "1h" }, "completion_window", "invalid_value"],
      [{ endpoint: "/v1/nope" }, "endpoint", "invalid_value"],
      [{ metadata: "{not json" }, "metadata", "invalid_value"],
    ];
    for (const [fields, param, code] of cases) {
      const form = new FormData();
      for (const [k, v] of Object.entries(fields)) form.set(k, v);
      form.set("file", new Blob([jsonl([chatLine("x")])]), "x.jsonl");
      const r = await call(t.url, "/v1/batches", { method: "POST", body: form });
      expect(r.status, param).toBe(400);
      expect(r.body.error, param).toMatchObject({ type: "invalid_request_error", param, code });
    }
    const noFile = new FormData();
    noFile.set("model", "m");
    const r = await call(t.url, "/v1/batches", { method: "POST", body: noFile });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ param: "file", code: "missing_required_parameter" });
    expect((await call(t.url, "/v1/files")).body.data.length).toBe(before);
  });

  test("once results exist the batch says where: output_location and a working presigned results_url", async () => {
    const b = await createBatch(t, (await uploadFile(t, 1, "res")).id);
    await waitForBatch(t.client, b.id, ["in_progress"]);
    const outputKey = `outputs/default/${b.id}/output.jsonl`;
    const errorKey = `outputs/default/${b.id}/errors.jsonl`;
    await t.ctx.s3.send(new PutObjectCommand({ Bucket: t.ctx.bucket, Key: outputKey, Body: "result line\n" }));
    await t.ctx.db.updateTable("batches").set({ output_key: outputKey, error_key: errorKey }).where("id", "=", b.id).execute();

    const got = await call(t.url, `/v1/batches/${b.id}`);
    expect(got.body.output_location).toEqual({ bucket: t.ctx.bucket, key: outputKey, errors_key: errorKey });
    const res = await fetch(got.body.results_url);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("result line\n");
  });

  test("models lists what live agents serve", async () => {
    const now = new Date();
    await t.ctx.db
      .insertInto("agents")
      .values([
        { id: "a1", models: JSON.stringify(["m2", "m1"]), hostname: "h1", started_at: new Date(now.getTime() - 5000), last_seen_at: now },
        { id: "a2", models: JSON.stringify(["m1"]), hostname: "h2", started_at: now, last_seen_at: now },
        { id: "gone", models: JSON.stringify(["old"]), hostname: "h3", last_seen_at: new Date(now.getTime() - 120_000) },
      ])
      .execute();
    const list = await t.client.models.list();
    expect(list.data).toEqual([
      { id: "m1", object: "model", created: Math.floor((now.getTime() - 5000) / 1000), owned_by: "barge", shutdown_date: null },
      { id: "m2", object: "model", created: Math.floor((now.getTime() - 5000) / 1000), owned_by: "barge", shutdown_date: null },
    ]);
  });
});

describe("cancel while validating", () => {
  let t: TestApi;
  beforeAll(async () => {
    // No validator runs here, so the batch stays validating until it is cancelled.
    t = await startBareApi();
  });
  afterAll(async () => {
    await t?.close();
  });

  test("a validating batch is cancelled outright", async () => {
    const f = await t.client.files.create({ file: await toFile(Buffer.from(jsonl([chatLine("v")])), "in.jsonl"), purpose: "batch" });
    const b = await t.client.batches.create({ input_file_id: f.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    expect(b.status).toBe("validating");
    const c = await t.client.batches.cancel(b.id);
    expect(c.status).toBe("cancelled");
    expect(c.cancelled_at).not.toBeNull();
    expect(c.cancelling_at).not.toBeNull();
    expect(await chunkStatuses(t, b.id)).toEqual([]);
    const err = await t.client.batches.cancel(b.id).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 409, code: "batch_not_cancellable" });
    // A cancelled batch no longer holds its input.
    expect(await t.client.files.delete(f.id)).toMatchObject({ deleted: true });
  });
});

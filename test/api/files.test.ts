import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync, createReadStream } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { toFile } from "openai/uploads";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { keys } from "@barge/core";
import { call, chatLine, jsonl, sdkClient, startTestApi, waitForBatch, type TestApi } from "../support/api-harness.js";

async function objectCount(t: TestApi): Promise<number> {
  const list = await t.ctx.s3.send(new ListObjectsV2Command({ Bucket: t.ctx.bucket }));
  return list.KeyCount ?? 0;
}

async function objectExists(t: TestApi, key: string): Promise<boolean> {
  try {
    await t.ctx.s3.send(new HeadObjectCommand({ Bucket: t.ctx.bucket, Key: key }));
    return true;
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw err;
  }
}

async function upload(t: TestApi, text: string, filename = "in.jsonl") {
  return t.client.files.create({ file: await toFile(Buffer.from(text), filename), purpose: "batch" });
}

describe("files", () => {
  let t: TestApi;
  let dir: string;
  beforeAll(async () => {
    t = await startTestApi();
    dir = mkdtempSync(join(tmpdir(), "barge-api-files-"));
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await t?.close();
  });

  test("files.create streams the upload to the documented S3 key", async () => {
    // Multi-byte characters and no trailing newline: byte counts and content must be exact.
    const text = jsonl([chatLine("a"), chatLine("b")]) + JSON.stringify(chatLine("ünïcødé ✓"));
    const f = await upload(t, text);
    expect(f.id).toMatch(/^file-[0-9a-z]{24}$/);
    expect(f).toMatchObject({ object: "file", bytes: Buffer.byteLength(text), filename: "in.jsonl", purpose: "batch", status: "processed" });
    expect(Math.abs(f.created_at - Date.now() / 1000)).toBeLessThan(60);
    const obj = await t.ctx.s3.send(new GetObjectCommand({ Bucket: t.ctx.bucket, Key: keys.input("default", f.id) }));
    expect(await obj.Body!.transformToString()).toBe(text);
    expect(obj.ContentType).toBe("application/jsonl");
  });

  test("files.create accepts a file stream from disk", async () => {
    const path = join(dir, "disk.jsonl");
    const text = jsonl(Array.from({ length: 50 }, (_, i) => chatLine(`d${i}`)));
    writeFileSync(path, text);
    const f = await t.client.files.create({ file: createReadStream(path), purpose: "batch" });
    expect(f).toMatchObject({ object: "file", bytes: Buffer.byteLength(text), filename: "disk.jsonl", status: "processed" });
  });

  test("a file larger than one 5 MiB part goes up as a multipart upload, intact", async () => {
    const line = JSON.stringify(chatLine("p".repeat(500))) + "\n";
    const big = Buffer.from(line.repeat(Math.ceil((12 * 1024 * 1024) / line.length)));
    const f = await t.client.files.create({ file: await toFile(big, "big.jsonl"), purpose: "batch" });
    expect(f.bytes).toBe(big.length);
    const res = await t.client.files.content(f.id);
    expect(res.headers.get("content-length")).toBe(String(big.length));
    expect(createHash("sha256").update(Buffer.from(await res.arrayBuffer())).digest("hex")).toBe(createHash("sha256").update(big).digest("hex"));
  });

  test("retrieve and content are byte-identical to the upload", async () => {
    const text = jsonl([chatLine("x"), "  ", chatLine("y")]) + "tail without newline ✓";
    const f = await upload(t, text, "content.jsonl");
    const got = await t.client.files.retrieve(f.id);
    expect(got).toEqual(f);
    const res = await t.client.files.content(f.id);
    expect(res.headers.get("content-type")).toBe("application/jsonl");
    expect(res.headers.get("content-length")).toBe(String(Buffer.byteLength(text)));
    expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(text))).toBe(true);
  });

  test("a non-.jsonl name is served as octet-stream", async () => {
    const f = await upload(t, jsonl([chatLine("o")]), "input.txt");
    const res = await fetch(`${t.url}/v1/files/${f.id}/content`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    expect(await res.text()).toBe(jsonl([chatLine("o")]));
  });

  test("list pages newest first with after/limit, in either order", async () => {
    const created: string[] = [];
    for (let i = 0; i < 3; i++) created.push((await upload(t, jsonl([chatLine(`l${i}`)]), `list-${i}.jsonl`)).id);
    const all = await call(t.url, "/v1/files");
    expect(all.status).toBe(200);
    const ids: string[] = all.body.data.map((f: { id: string }) => f.id);
    expect(ids).toEqual([...ids].sort().reverse());
    expect(ids.slice(0, 3)).toEqual([...created].reverse());
    expect(all.body).toMatchObject({ object: "list", first_id: ids[0], last_id: ids[ids.length - 1], has_more: false });

    const p1 = await call(t.url, "/v1/files?limit=2");
    expect(p1.body.data.map((f: { id: string }) => f.id)).toEqual(ids.slice(0, 2));
    expect(p1.body).toMatchObject({ has_more: true, first_id: ids[0], last_id: ids[1] });
    const p2 = await call(t.url, `/v1/files?limit=2&after=${p1.body.last_id}`);
    expect(p2.body.data.map((f: { id: string }) => f.id)).toEqual(ids.slice(2, 4));

    const asc = await call(t.url, "/v1/files?order=asc&limit=100");
    expect(asc.body.data.map((f: { id: string }) => f.id)).toEqual([...ids].reverse());

    const walked: string[] = [];
    for await (const f of t.client.files.list({ limit: 2 })) walked.push(f.id);
    expect(walked).toEqual(ids);

    expect((await call(t.url, "/v1/files?purpose=batch_output")).body.data).toEqual([]);
  });

  test("delete removes the row and the object", async () => {
    const f = await upload(t, jsonl([chatLine("del")]));
    const key = keys.input("default", f.id);
    expect(await objectExists(t, key)).toBe(true);
    const res = await t.client.files.delete(f.id);
    expect(res).toEqual({ id: f.id, object: "file", deleted: true });
    await expect(t.client.files.retrieve(f.id)).rejects.toMatchObject({ status: 404, code: "not_found", param: "file_id" });
    expect(await objectExists(t, key)).toBe(false);
    const again = await call(t.url, `/v1/files/${f.id}`, { method: "DELETE" });
    expect(again.status).toBe(404);
  });

  test("deleting the input of a running batch is refused with 409, and allowed once it finished", async () => {
    const f = await upload(t, jsonl([chatLine("busy")]));
    const b = await t.client.batches.create({ input_file_id: f.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    await waitForBatch(t.client, b.id, ["in_progress"]);
    const err = await t.client.files.delete(f.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.ConflictError);
    expect(err).toMatchObject({ status: 409, type: "invalid_request_error", code: "file_in_use", param: null });
    expect(await objectExists(t, keys.input("default", f.id))).toBe(true);

    const bad = await upload(t, "not json\n");
    const failed = await t.client.batches.create({ input_file_id: bad.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    await waitForBatch(t.client, failed.id, ["failed"]);
    expect(await t.client.files.delete(bad.id)).toEqual({ id: bad.id, object: "file", deleted: true });
    // The finished batch still names its (now deleted) input, as OpenAI's do.
    expect((await t.client.batches.retrieve(failed.id)).input_file_id).toBe(bad.id);
  });

  test("a purpose other than batch is refused and leaves no object behind", async () => {
    const before = await objectCount(t);
    const err = await t.client.files
      .create({ file: await toFile(Buffer.from(jsonl([chatLine("p")])), "p.jsonl"), purpose: "fine-tune" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ status: 400, type: "invalid_request_error", param: "purpose", code: "invalid_value" });
    expect(await objectCount(t)).toBe(before);
  });

  test("a form without a file part or without purpose is refused", async () => {
    const noFile = new FormData();
    noFile.set("purpose", "batch");
    const r1 = await call(t.url, "/v1/files", { method: "POST", body: noFile });
    expect(r1.status).toBe(400);
    expect(r1.body.error).toMatchObject({ type: "invalid_request_error", param: "file", code: "missing_required_parameter" });

    const noPurpose = new FormData();
    noPurpose.set("file", new Blob([jsonl([chatLine("np")])]), "np.jsonl");
    const r2 = await call(t.url, "/v1/files", { method: "POST", body: noPurpose });
    expect(r2.status).toBe(400);
    expect(r2.body.error).toMatchObject({ type: "invalid_request_error", param: "purpose", code: "missing_required_parameter" });

    const notMultipart = await call(t.url, "/v1/files", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(notMultipart.status).toBe(400);
    expect(notMultipart.body.error).toMatchObject({ type: "invalid_request_error", param: null, code: "invalid_content_type" });
  });

  test("unknown files and routes answer 404 in OpenAI's shape", async () => {
    const missing = "file-doesnotexist";
    for (const path of [`/v1/files/${missing}`, `/v1/files/${missing}/content`]) {
      const r = await call(t.url, path);
      expect(r.status).toBe(404);
      expect(r.body.error).toMatchObject({ type: "invalid_request_error", param: "file_id", code: "not_found" });
    }
    const route = await call(t.url, "/v1/nothing-here");
    expect(route.status).toBe(404);
    expect(route.body).toEqual({
      error: { message: "Unknown request URL: GET /v1/nothing-here.", type: "invalid_request_error", param: null, code: "unknown_url" },
    });
  });

  test("health answers 200, degraded while no agent is live", async () => {
    expect(await call(t.url, "/health")).toMatchObject({ status: 200, body: { status: "degraded", reasons: ["no live agent"] } });
  });
});

describe("API key", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi({ BARGE_API_KEY: "sekret" });
  });
  afterAll(async () => {
    await t?.close();
  });

  test("every /v1 route needs the bearer key; /health does not", async () => {
    for (const headers of [{}, { authorization: "Bearer wrong" }, { authorization: "sekret" }] as Record<string, string>[]) {
      const r = await call(t.url, "/v1/files", { headers });
      expect(r.status).toBe(401);
      expect(r.body.error).toMatchObject({ type: "invalid_request_error", param: null, code: "invalid_api_key" });
    }
    const err = await t.client.batches.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    const ok = sdkClient(t.url, "sekret");
    expect((await ok.files.list()).data).toEqual([]);
    expect((await call(t.url, "/health")).status).toBe(200);
  });
});

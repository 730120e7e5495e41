import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { keys } from "@barge/core";
import { sweepExpiredUploads } from "@barge/api";
import { call, chatLine, jsonl, postJson, sdkClient, serveApi, startBareApi, startTestApi, waitForBatch, type TestApi } from "../support/api-harness.js";
import { testLog } from "../support/context.js";
import { suiteResources } from "../support/suite-resources.js";

async function objectExists(t: TestApi, key: string): Promise<boolean> {
  try {
    await t.ctx.s3.send(new HeadObjectCommand({ Bucket: t.ctx.bucket, Key: key }));
    return true;
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw err;
  }
}

/** Presigns an upload of `body` (its size is declared and signed). */
async function presign(t: TestApi, body: string, filename = "in.jsonl") {
  const r = await postJson(t.url, "/v1/files/presign", { filename, purpose: "batch", bytes: Buffer.byteLength(body) });
  expect(r.status).toBe(200);
  return r.body as { id: string; object: string; upload_url: string; method: string; expires_at: number; key: string };
}

describe("presigned uploads", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi({ PRESIGN_EXPIRES_SECONDS: "600", MAX_REQUESTS_PER_BATCH: "100" });
  });
  afterAll(async () => {
    await t?.close();
  });

  test("presign, PUT straight to S3, complete: the file is processed with its size", async () => {
    const text = jsonl([chatLine("a"), chatLine("b"), chatLine("ç")]);
    const p = await presign(t, text, "direct.jsonl");
    expect(p.id).toMatch(/^file-[0-9a-z]{24}$/);
    // The URL writes a staging key of its own; complete copies it to the file's input key.
    expect(p).toMatchObject({ object: "file.upload", method: "PUT", key: keys.staging("default", p.id) });
    expect(Math.abs(p.expires_at - (Date.now() / 1000 + 600))).toBeLessThan(30);

    const put = await fetch(p.upload_url, { method: "PUT", body: text });
    expect(put.status).toBe(200);

    const done = await postJson(t.url, `/v1/files/${p.id}/complete`, {});
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ id: p.id, object: "file", bytes: Buffer.byteLength(text), filename: "direct.jsonl", purpose: "batch", status: "processed" });

    const row = await t.ctx.db.selectFrom("files").select(["s3_key", "etag"]).where("id", "=", p.id).executeTakeFirstOrThrow();
    expect(row).toEqual({ s3_key: keys.input("default", p.id), etag: (await t.ctx.s3.send(new HeadObjectCommand({ Bucket: t.ctx.bucket, Key: keys.input("default", p.id) }))).ETag });
    expect(await objectExists(t, p.key)).toBe(false);

    const got = await t.client.files.retrieve(p.id);
    expect(got).toMatchObject({ id: p.id, status: "processed", bytes: Buffer.byteLength(text) });
    expect(Buffer.from(await (await t.client.files.content(p.id)).arrayBuffer()).toString()).toBe(text);

    // Completing again is harmless and answers the same file.
    const again = await postJson(t.url, `/v1/files/${p.id}/complete`, {});
    expect(again.status).toBe(200);
    expect(again.body).toEqual(done.body);

    const b = await t.client.batches.create({ input_file_id: p.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    expect(b.status).toBe("validating");
  });

  test("complete before the PUT is upload_incomplete, and the upload can still finish", async () => {
    const late = jsonl([chatLine("late")]);
    const p = await presign(t, late);
    const early = await postJson(t.url, `/v1/files/${p.id}/complete`, {});
    expect(early.status).toBe(400);
    expect(early.body.error).toMatchObject({ type: "invalid_request_error", param: "file", code: "upload_incomplete" });

    await fetch(p.upload_url, { method: "PUT", body: late });
    const done = await postJson(t.url, `/v1/files/${p.id}/complete`, {});
    expect(done.status).toBe(200);
    expect(done.body.status).toBe("processed");
  });

  test("a pending upload is invisible: 404 everywhere, and no batch can use it", async () => {
    const pending = jsonl([chatLine("pending")]);
    const p = await presign(t, pending);
    await fetch(p.upload_url, { method: "PUT", body: pending });
    for (const path of [`/v1/files/${p.id}`, `/v1/files/${p.id}/content`]) {
      const r = await call(t.url, path);
      expect(r.status, path).toBe(404);
      expect(r.body.error, path).toMatchObject({ code: "not_found", param: "file_id" });
    }
    expect((await call(t.url, `/v1/files/${p.id}`, { method: "DELETE" })).status).toBe(404);
    const listed = await call(t.url, "/v1/files");
    expect(listed.body.data.map((f: { id: string }) => f.id)).not.toContain(p.id);

    const err = await t.client.batches
      .create({ input_file_id: p.id, endpoint: "/v1/chat/completions", completion_window: "24h" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err).toMatchObject({ status: 404, param: "input_file_id", code: "not_found" });
  });

  test("complete validates the content: the first error, by line, and the file is marked error", async () => {
    const broken = jsonl([chatLine("a"), "{broken", chatLine("a")]);
    const p = await presign(t, broken);
    await fetch(p.upload_url, { method: "PUT", body: broken });
    const done = await postJson(t.url, `/v1/files/${p.id}/complete`, {});
    expect(done.status).toBe(400);
    expect(done.body.error).toEqual({
      message: "Line 2: This line is not parseable as valid JSON.",
      type: "invalid_request_error",
      param: "file",
      code: "invalid_json_line",
    });
    expect((await t.client.files.retrieve(p.id)).status).toBe("error");
    const again = await postJson(t.url, `/v1/files/${p.id}/complete`, {});
    expect(again.status).toBe(409);
    const err = await t.client.batches
      .create({ input_file_id: p.id, endpoint: "/v1/chat/completions", completion_window: "24h" })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400, param: "input_file_id", code: "invalid_file_status" });
  });

  test("complete takes the endpoint from the first line", async () => {
    const emb = { custom_id: "e1", method: "POST", url: "/v1/embeddings", body: { model: "m", input: "x" } };
    const mixed = jsonl([emb, { ...emb, custom_id: "e2" }, chatLine("c")]);
    const p = await presign(t, mixed);
    await fetch(p.upload_url, { method: "PUT", body: mixed });
    const done = await postJson(t.url, `/v1/files/${p.id}/complete`, {});
    expect(done.status).toBe(400);
    expect(done.body.error).toMatchObject({ code: "url_mismatch", param: "file" });
    expect(done.body.error.message).toMatch(/^Line 3: /);

    const many101 = jsonl(Array.from({ length: 101 }, (_, i) => chatLine(`t${i}`)));
    const q = await presign(t, many101);
    await fetch(q.upload_url, { method: "PUT", body: many101 });
    const many = await postJson(t.url, `/v1/files/${q.id}/complete`, {});
    expect(many.status).toBe(400);
    expect(many.body.error).toMatchObject({ code: "too_many_tasks", param: "file" });
    expect(many.body.error.message).toMatch(/^Line 101: /);
  });

  test("the declared size holds: another size is refused (by S3, or by complete where S3 is lenient) and the file stays pending", async () => {
    const right = jsonl([chatLine("sized")]);
    const p = await presign(t, right);
    const put = await fetch(p.upload_url, { method: "PUT", body: `${right}${right}` });
    const early = await postJson(t.url, `/v1/files/${p.id}/complete`, {});
    expect(early.status).toBe(400);
    if (put.status === 200) {
      // s3rver stores it: it does not hold a PUT to its signed Content-Length.
      expect(early.body.error).toEqual({
        message: `The uploaded object has ${2 * Buffer.byteLength(right)} bytes, not the ${Buffer.byteLength(right)} declared at presign.`,
        type: "invalid_request_error",
        param: "bytes",
        code: "size_mismatch",
      });
    } else {
      expect(put.status).toBe(403);
      expect(early.body.error).toMatchObject({ code: "upload_incomplete" });
    }
    expect((await t.ctx.db.selectFrom("files").select("status").where("id", "=", p.id).executeTakeFirstOrThrow()).status).toBe("pending");
    expect((await fetch(p.upload_url, { method: "PUT", body: right })).status).toBe(200);
    expect((await postJson(t.url, `/v1/files/${p.id}/complete`, {})).body).toMatchObject({ status: "processed", bytes: Buffer.byteLength(right) });
  });

  test("presign checks its body", async () => {
    const bad = await postJson(t.url, "/v1/files/presign", { filename: "x.jsonl", purpose: "assistants" });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ type: "invalid_request_error", param: "purpose", code: "invalid_value" });
    const noName = await postJson(t.url, "/v1/files/presign", { purpose: "batch" });
    expect(noName.status).toBe(400);
    expect(noName.body.error).toMatchObject({ param: "filename", code: "missing_required_parameter" });
    const big = await postJson(t.url, "/v1/files/presign", { filename: "x.jsonl", purpose: "batch", bytes: t.ctx.config.MAX_FILE_BYTES + 1 });
    expect(big.status).toBe(400);
    expect(big.body.error).toMatchObject({ param: "bytes", code: "file_too_large" });
    const noSize = await postJson(t.url, "/v1/files/presign", { filename: "x.jsonl", purpose: "batch" });
    expect(noSize.status).toBe(400);
    expect(noSize.body.error).toMatchObject({ param: "bytes", code: "missing_required_parameter" });
    const unknown = await postJson(t.url, "/v1/files/file-nope/complete", {});
    expect(unknown.status).toBe(404);
  });
});

describe("expired uploads", () => {
  let t: TestApi;
  beforeAll(async () => {
    // No background loops here: the test runs the sweep itself.
    t = await startBareApi({ PRESIGN_EXPIRES_SECONDS: "1" });
  });
  afterAll(async () => {
    await t?.close();
  });

  test("the sweeper deletes lapsed pending uploads and their objects, and nothing else", async () => {
    const never = jsonl([chatLine("never completed")]);
    const put = await presign(t, never);
    await fetch(put.upload_url, { method: "PUT", body: never });
    const bare = await presign(t, never);
    const completedBody = jsonl([chatLine("completed")]);
    const kept = await presign(t, completedBody);
    // Straight to its key: its URL lives 1 s here, and a busy machine can take longer to use it.
    await t.ctx.s3.send(new PutObjectCommand({ Bucket: t.ctx.bucket, Key: kept.key, Body: completedBody }));
    expect((await postJson(t.url, `/v1/files/${kept.id}/complete`, {})).status).toBe(200);

    const deps = { db: t.ctx.db, s3: t.ctx.s3, bucket: t.ctx.bucket, log: testLog };
    let swept = 0;
    const deadline = Date.now() + 20_000;
    while (swept < 2 && Date.now() < deadline) {
      swept += await sweepExpiredUploads(deps);
      if (swept < 2) await new Promise((r) => setTimeout(r, 100));
    }
    expect(swept).toBe(2);

    const left = await t.ctx.db.selectFrom("files").select(["id", "status"]).orderBy("id").execute();
    expect(left).toEqual([{ id: kept.id, status: "processed" }]);
    expect(await objectExists(t, put.key)).toBe(false);
    expect(await objectExists(t, bare.key)).toBe(false);
    // The completed upload's staging object went with its complete; its input object stays.
    expect(await objectExists(t, kept.key)).toBe(false);
    expect(await objectExists(t, keys.input("default", kept.id))).toBe(true);
    expect((await postJson(t.url, `/v1/files/${put.id}/complete`, {})).status).toBe(404);
    expect(await sweepExpiredUploads(deps)).toBe(0);
  });
});

describe("a presigned URL after complete", () => {
  const suite = suiteResources();

  test("can only write its staging key: the file's content and a batch on it stay the validated ones", async () => {
    const ctx = await suite.context({ API_POLL_MS: "50", AGENT_POLL_MS: "50", PRESIGN_EXPIRES_SECONDS: "600" });
    const api = await serveApi(ctx);
    suite.cleanup(() => api.close());
    const sim = await suite.sim({ models: ["barge-sim-1"], decodeTokensPerSec: 1000 });
    const client = sdkClient(api.url);

    const validated = jsonl(["v-0", "v-1", "v-2"].map((id) => chatLine(id, { model: "barge-sim-1" })));
    const r = await postJson(api.url, "/v1/files/presign", { filename: "pin.jsonl", purpose: "batch", bytes: Buffer.byteLength(validated) });
    expect(r.status).toBe(200);
    const p = r.body as { id: string; upload_url: string; key: string };
    expect((await fetch(p.upload_url, { method: "PUT", body: validated })).status).toBe(200);
    expect((await postJson(api.url, `/v1/files/${p.id}/complete`, {})).status).toBe(200);

    // The same length, other requests: a second PUT on the still-valid URL lands on the staging key only.
    const swapped = validated.replaceAll('"v-', '"x-');
    expect(Buffer.byteLength(swapped)).toBe(Buffer.byteLength(validated));
    expect((await fetch(p.upload_url, { method: "PUT", body: swapped })).status).toBe(200);
    const staged = await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: p.key }));
    expect(await staged.Body!.transformToString()).toBe(swapped);
    expect(Buffer.from(await (await client.files.content(p.id)).arrayBuffer()).toString()).toBe(validated);

    const created = await client.batches.create({ input_file_id: p.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    await suite.agent(ctx, { engineUrl: sim.url, agentId: "presign-pin" }).start();
    const done = await waitForBatch(client, created.id, ["completed", "failed"]);
    expect(done.status).toBe("completed");
    const out = Buffer.from(await (await client.files.content(done.output_file_id!)).arrayBuffer()).toString();
    expect(out.trim().split("\n").map((l) => (JSON.parse(l) as { custom_id: string }).custom_id)).toEqual(["v-0", "v-1", "v-2"]);
    expect(sim.requests()).toHaveLength(3);
  });
});

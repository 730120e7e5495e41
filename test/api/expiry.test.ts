import { NotFoundError, type APIError } from "openai";
import { toFile } from "openai/uploads";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { sweepExpiredFiles } from "@barge/api";
import { keys } from "@barge/core";
import { call, chatLine, jsonl, postJson, startBareApi, type TestApi } from "../support/api-harness.js";
import { testLog } from "../support/context.js";
import { listKeys } from "../support/seed.js";

describe("file expiry", () => {
  let t: TestApi;
  let sweep: (at: Date) => Promise<number>;
  beforeAll(async () => {
    t = await startBareApi();
    sweep = (at) => sweepExpiredFiles({ db: t.ctx.db, s3: t.ctx.s3, bucket: t.ctx.bucket, log: testLog }, at);
  });
  afterAll(async () => {
    await t?.close();
  });

  const upload = async (seconds?: number) =>
    t.client.files.create({
      file: await toFile(Buffer.from(jsonl([chatLine("x")])), "in.jsonl"),
      purpose: "batch",
      ...(seconds === undefined ? {} : { expires_after: { anchor: "created_at" as const, seconds } }),
    });
  const at = (unixSeconds: number) => new Date(unixSeconds * 1000);

  test("files.create with expires_after: the file says when, and the sweeper deletes row and object then, not before", async () => {
    const keep = await upload();
    expect(keep.expires_at).toBeNull();
    const f = await upload(3600);
    expect(f.expires_at! - f.created_at).toBe(3600);
    expect((await t.client.files.retrieve(f.id)).expires_at).toBe(f.expires_at);

    expect(await sweep(at(f.expires_at! - 1))).toBe(0);
    expect(await sweep(at(f.expires_at! + 1))).toBe(1);
    const gone = await t.client.files.retrieve(f.id).then(
      () => null,
      (e: APIError) => e,
    );
    expect(gone).toBeInstanceOf(NotFoundError);
    expect(await listKeys(t.ctx, keys.input("default", f.id))).toEqual([]);
    expect((await t.client.files.retrieve(keep.id)).id).toBe(keep.id);
  });

  test("an expired file that a running batch reads is kept until the batch is done", async () => {
    const f = await upload(3600);
    const b = await t.client.batches.create({ input_file_id: f.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    // No validator here: the batch stays validating, which still reads its input.
    expect(await sweep(at(f.expires_at! + 1))).toBe(0);
    await t.client.batches.cancel(b.id);
    expect(await sweep(at(f.expires_at! + 1))).toBe(1);
    expect(await listKeys(t.ctx, keys.input("default", f.id))).toEqual([]);
  });

  test("a presigned upload takes expires_after too", async () => {
    const body = jsonl([chatLine("p")]);
    const p = await postJson(t.url, "/v1/files/presign", { filename: "p.jsonl", purpose: "batch", bytes: Buffer.byteLength(body), expires_after: { anchor: "created_at", seconds: 86_400 } });
    expect(p.status).toBe(200);
    expect((await fetch(p.body.upload_url, { method: "PUT", body })).status).toBe(200);
    const done = await postJson(t.url, `/v1/files/${p.body.id}/complete`, {});
    expect(done.body.expires_at - done.body.created_at).toBe(86_400);
  });

  test("expires_after and output_expires_after are checked as OpenAI does", async () => {
    const form = (fields: Record<string, string>) => {
      const fd = new FormData();
      fd.set("purpose", "batch");
      for (const [k, v] of Object.entries(fields)) fd.set(k, v);
      fd.set("file", new Blob([jsonl([chatLine("x")])]), "x.jsonl");
      return call(t.url, "/v1/files", { method: "POST", body: fd });
    };
    const cases: [Record<string, string>, string][] = [
      [{ "expires_after[anchor]": "created_at", "expires_after[seconds]": "3599" }, "expires_after[seconds]"],
      [{ "expires_after[anchor]": "created_at", "expires_after[seconds]": "2592001" }, "expires_after[seconds]"],
      [{ "expires_after[anchor]": "last_active_at", "expires_after[seconds]": "3600" }, "expires_after[anchor]"],
      [{ "expires_after[seconds]": "3600" }, "expires_after[anchor]"],
    ];
    for (const [fields, param] of cases) {
      const r = await form(fields);
      expect(r.status, JSON.stringify(fields)).toBe(400);
      expect(r.body.error.param).toBe(param);
    }
    const ok = await form({ "expires_after[anchor]": "created_at", "expires_after[seconds]": "2592000" });
    expect(ok.body.expires_at - ok.body.created_at).toBe(2_592_000);

    const f = await upload();
    const batch = (output_expires_after: unknown) =>
      postJson(t.url, "/v1/batches", { input_file_id: f.id, endpoint: "/v1/chat/completions", completion_window: "24h", output_expires_after });
    expect((await batch({ anchor: "created_at", seconds: 60 })).body.error).toMatchObject({ param: "output_expires_after.seconds", code: "invalid_value" });
    expect((await batch({ anchor: "now", seconds: 3600 })).body.error).toMatchObject({ param: "output_expires_after.anchor", code: "invalid_value" });
    const good = await batch({ anchor: "created_at", seconds: 7200 });
    expect(good.status).toBe(200);
    expect(good.body.output_expires_after).toEqual({ anchor: "created_at", seconds: 7200 });

    // The one-shot form spells it as the SDKs spell nested form fields.
    const oneShot = new FormData();
    oneShot.set("output_expires_after[anchor]", "created_at");
    oneShot.set("output_expires_after[seconds]", "86400");
    oneShot.set("file", new Blob([jsonl([chatLine("o")])]), "o.jsonl");
    const r = await call(t.url, "/v1/batches", { method: "POST", body: oneShot });
    expect(r.status).toBe(200);
    expect(r.body.output_expires_after).toEqual({ anchor: "created_at", seconds: 86_400 });
    const half = new FormData();
    half.set("output_expires_after[seconds]", "86400");
    half.set("file", new Blob([jsonl([chatLine("o")])]), "o.jsonl");
    expect((await call(t.url, "/v1/batches", { method: "POST", body: half })).body.error).toMatchObject({ param: "output_expires_after[anchor]" });
  });
});

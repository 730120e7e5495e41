import { toFile } from "openai/uploads";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { sweepStaleMultipartUploads } from "@barge/api";
import { testLog } from "../support/context.js";
import { listKeys } from "../support/seed.js";
import { call, postJson, startBareApi, type TestApi } from "../support/api-harness.js";

describe("upload edges: hostile part lists, oversized parts, filenames", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startBareApi();
  });
  afterAll(async () => {
    await t?.close();
  });

  const addPart = async (uploadId: string, data: Buffer) => t.client.uploads.parts.create(uploadId, { data: await toFile(data, "part") });
  const postPart = (uploadId: string, data: Buffer) => {
    const form = new FormData();
    form.set("data", new Blob([data]), "part");
    return call(t.url, `/v1/uploads/${uploadId}/parts`, { method: "POST", body: form });
  };
  const staged = (uploadId: string) => listKeys(t.ctx, `uploads/default/${uploadId}/`);
  const partRows = async (uploadId: string) =>
    (await t.ctx.db.selectFrom("upload_parts").select("id").where("upload_id", "=", uploadId).execute()).map((r) => r.id);
  const newUpload = (bytes: number) => t.client.uploads.create({ bytes, filename: "e.jsonl", mime_type: "application/jsonl", purpose: "batch" });

  test("complete refuses more than 10,000 part ids before any lookup", async () => {
    const upload = await newUpload(4);
    const ids = Array.from({ length: 10_001 }, (_, i) => `part_${i}`);
    const res = await postJson(t.url, `/v1/uploads/${upload.id}/complete`, { part_ids: ids });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ param: "part_ids", code: "invalid_value" });
    expect(res.body.error.message).toContain("at most 10000 parts");
  });

  test("9,999 unknown part ids get one invalid_value naming the first, while /health answers", async () => {
    const upload = await newUpload(4);
    const part = await addPart(upload.id, Buffer.from("abcd"));
    const ids = [part.id, ...Array.from({ length: 9_998 }, (_, i) => `part_unknown${String(i).padStart(5, "0")}`)];
    const [res, health] = await Promise.all([postJson(t.url, `/v1/uploads/${upload.id}/complete`, { part_ids: ids }), call(t.url, "/health")]);
    expect(health).toMatchObject({ status: 200, body: { status: "degraded", reasons: ["no live agent"] } });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ param: "part_ids", code: "invalid_value", message: `Upload '${upload.id}' has no part 'part_unknown00000'.` });

    const dup = await postJson(t.url, `/v1/uploads/${upload.id}/complete`, { part_ids: [...ids.slice(1, 5000), "part_unknown00004"] });
    expect(dup.body.error).toMatchObject({ param: "part_ids", code: "duplicate_part_id", message: "Part 'part_unknown00004' is listed more than once." });
    // The upload is untouched: its one real part still completes it.
    expect(await t.client.uploads.complete(upload.id, { part_ids: [part.id] })).toMatchObject({ status: "completed" });
  });

  test("a part past the declared bytes is refused with upload_too_large and nothing of it is kept", async () => {
    const upload = await newUpload(10);
    const first = await addPart(upload.id, Buffer.from("123456"));
    const over = await postPart(upload.id, Buffer.from("78901"));
    expect(over).toMatchObject({ status: 400, body: { error: { param: "data", code: "upload_too_large" } } });
    expect(await staged(upload.id)).toHaveLength(1);
    expect(await partRows(upload.id)).toEqual([first.id]);
    // What is left still fits, and completes the upload.
    const last = await addPart(upload.id, Buffer.from("7890"));
    expect(await t.client.uploads.complete(upload.id, { part_ids: [first.id, last.id] })).toMatchObject({ status: "completed", bytes: 10 });
  });

  test("parts sent in parallel that fit alone but not together: one is recorded, the other refused", async () => {
    const upload = await newUpload(10);
    const answers = await Promise.all([postPart(upload.id, Buffer.from("aaaaaa")), postPart(upload.id, Buffer.from("bbbbbb"))]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
    expect(answers.find((a) => a.status === 400)?.body.error).toMatchObject({ param: "data", code: "upload_too_large" });
    expect(await staged(upload.id)).toHaveLength(1);
    expect(await partRows(upload.id)).toEqual([answers.find((a) => a.status === 200)?.body.id]);
  });

  /** POST /v1/files with a hand-written form, so the filename's header is exactly as given. */
  const postFileRaw = (disposition: string) => {
    const boundary = "edgeboundary";
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n`),
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; ${disposition}\r\nContent-Type: application/jsonl\r\n\r\n`),
      Buffer.from('{"custom_id":"a"}\n\r\n'),
      Buffer.from(`--${boundary}--\r\n`),
    ]);
    return call(t.url, "/v1/files", { method: "POST", headers: { "content-type": `multipart/form-data; boundary=${boundary}` }, body });
  };

  test("filenames: at most 255 characters and no NUL, on POST /v1/files and uploads alike", async () => {
    const before = await listKeys(t.ctx, "inputs/default/");
    const long = await postFileRaw(`filename="${"n".repeat(256)}"`);
    expect(long).toMatchObject({ status: 400, body: { error: { param: "filename", code: "invalid_value" } } });
    const nul = await postFileRaw(`filename*=UTF-8''a%00b.jsonl`);
    expect(nul).toMatchObject({ status: 400, body: { error: { param: "filename", code: "invalid_value" } } });
    expect(nul.body.error.message).toContain("must not contain NUL");
    expect(await listKeys(t.ctx, "inputs/default/")).toEqual(before);

    const longest = await postFileRaw(`filename="${"n".repeat(255)}"`);
    expect(longest).toMatchObject({ status: 200, body: { filename: "n".repeat(255), bytes: 18 } });

    const spec = { bytes: 1, mime_type: "application/jsonl", purpose: "batch" };
    for (const filename of ["n".repeat(256), "a\u0000b", "a\ud800b"]) {
      const res = await postJson(t.url, "/v1/uploads", { ...spec, filename });
      expect(res).toMatchObject({ status: 400, body: { error: { param: "filename", code: "invalid_value" } } });
    }
    expect(await postJson(t.url, "/v1/uploads", { ...spec, filename: "n".repeat(255) })).toMatchObject({ status: 200 });
  });

  test("the stale multipart sweep finds nothing in a fresh bucket, and a server without ListMultipartUploads is no error", async () => {
    const deps = { db: t.ctx.db, s3: t.ctx.s3, bucket: t.ctx.bucket, log: testLog };
    expect(await sweepStaleMultipartUploads(deps, 1 / 3600)).toBe(0);
  });
});

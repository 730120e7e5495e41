import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { createHash, randomBytes } from "node:crypto";
import { BadRequestError, ConflictError, NotFoundError, type APIError } from "openai";
import { toFile } from "openai/uploads";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { sweepExpiredOpenAIUploads } from "@barge/api";
import { keys } from "@barge/core";
import { call, chatLine, jsonl, postJson, startTestApi, waitForBatch, type TestApi } from "../support/api-harness.js";
import { testLog } from "../support/context.js";
import { listKeys, readObject } from "../support/seed.js";

const MiB = 1024 * 1024;

/** The rejection of `p`, which must reject. */
async function rejection(p: Promise<unknown>): Promise<APIError> {
  return p.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (err: APIError) => err,
  );
}

describe("OpenAI Uploads API", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi({ MAX_FILE_BYTES: String(32 * MiB) });
  });
  afterAll(async () => {
    await t?.close();
  });

  const addPart = async (uploadId: string, data: Buffer) => t.client.uploads.parts.create(uploadId, { data: await toFile(data, "part") });
  const staged = (uploadId: string) => listKeys(t.ctx, `uploads/default/${uploadId}/`);

  test("parts sent out of order are joined in the order complete lists them, copied or concatenated by size", async () => {
    // A is over S3's 5 MiB floor (copied server-side where the server can); B and C are under it.
    const a = randomBytes(6 * MiB);
    const b = randomBytes(3 * MiB);
    const c = Buffer.from("tiny tail part\n");
    const whole = Buffer.concat([a, c, b]);
    const upload = await t.client.uploads.create({ bytes: whole.length, filename: "big.jsonl", mime_type: "application/jsonl", purpose: "batch" });
    expect(upload).toMatchObject({ object: "upload", status: "pending", bytes: whole.length, filename: "big.jsonl", purpose: "batch", file: null });
    expect(upload.id).toMatch(/^upload_[0-9a-z]{24}$/);
    expect(upload.expires_at - upload.created_at).toBe(3600);

    // Sent B, C, A: part numbers 1, 2, 3, so the listed order A, C, B is the reverse of arrival.
    const pb = await addPart(upload.id, b);
    const pc = await addPart(upload.id, c);
    const pa = await addPart(upload.id, a);
    expect(pa).toMatchObject({ object: "upload.part", upload_id: upload.id });
    expect(pa.id).toMatch(/^part_[0-9a-z]{24}$/);
    const numbers = await t.ctx.db.selectFrom("upload_parts").select(["id", "part_number"]).where("upload_id", "=", upload.id).orderBy("part_number").execute();
    expect(numbers).toEqual([
      { id: pb.id, part_number: 1 },
      { id: pc.id, part_number: 2 },
      { id: pa.id, part_number: 3 },
    ]);
    expect(await staged(upload.id)).toHaveLength(3);

    const md5 = createHash("md5").update(whole).digest("hex");
    const done = await t.client.uploads.complete(upload.id, { part_ids: [pa.id, pc.id, pb.id], md5 });
    expect(done).toMatchObject({ id: upload.id, status: "completed" });
    expect(done.file).toMatchObject({ object: "file", bytes: whole.length, filename: "big.jsonl", purpose: "batch", status: "processed" });

    const content = Buffer.from(await (await t.client.files.content(done.file!.id)).arrayBuffer());
    expect(content.length).toBe(whole.length);
    expect(content.equals(whole)).toBe(true);
    const head = await t.ctx.s3.send(new HeadObjectCommand({ Bucket: t.ctx.bucket, Key: keys.input("default", done.file!.id) }));
    expect(head).toMatchObject({ ContentLength: whole.length, ContentType: "application/jsonl" });
    // The staged parts and their rows are gone once the file exists.
    expect(await staged(upload.id)).toEqual([]);
    expect(await t.ctx.db.selectFrom("upload_parts").select("id").where("upload_id", "=", upload.id).execute()).toEqual([]);

    // A retried complete answers the same upload; the file is listed like any other.
    expect(await t.client.uploads.complete(upload.id, { part_ids: [pa.id, pc.id, pb.id] })).toEqual(done);
    expect(await t.client.files.retrieve(done.file!.id)).toEqual(done.file);
  });

  test("parts sent in parallel get distinct numbers; unlisted (empty) parts are dropped", async () => {
    // The parts may not add up to more than the declared bytes, so only an empty part can go unlisted.
    const pieces = Array.from({ length: 8 }, (_, i) => Buffer.from(i === 4 ? "" : `piece ${i} `.repeat(i + 1)));
    const used = [5, 0, 7, 2, 1, 6, 3];
    const bytes = used.reduce((n, i) => n + pieces[i]!.length, 0);
    const upload = await t.client.uploads.create({ bytes, filename: "p.txt", mime_type: "text/plain", purpose: "batch" });
    const parts = await Promise.all(pieces.map((p) => addPart(upload.id, p)));
    const numbers = await t.ctx.db.selectFrom("upload_parts").select("part_number").where("upload_id", "=", upload.id).orderBy("part_number").execute();
    expect(numbers.map((n) => n.part_number)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);

    const done = await t.client.uploads.complete(upload.id, { part_ids: used.map((i) => parts[i]!.id) });
    const text = await (await t.client.files.content(done.file!.id)).text();
    expect(text).toBe(used.map((i) => pieces[i]!.toString()).join(""));
    expect(await staged(upload.id)).toEqual([]);
  });

  test("the uploaded file is a batch input like any other, and honours expires_after", async () => {
    const text = jsonl([chatLine("u1"), chatLine("u2"), chatLine("u3")]);
    const upload = await t.client.uploads.create({
      bytes: Buffer.byteLength(text),
      filename: "in.jsonl",
      mime_type: "application/jsonl",
      purpose: "batch",
      expires_after: { anchor: "created_at", seconds: 7200 },
    });
    const half = Math.floor(text.length / 2);
    const first = await addPart(upload.id, Buffer.from(text.slice(0, half)));
    const second = await addPart(upload.id, Buffer.from(text.slice(half)));
    const done = await t.client.uploads.complete(upload.id, { part_ids: [first.id, second.id] });
    expect(done.file!.expires_at! - done.file!.created_at).toBe(7200);
    expect(await readObject(t.ctx, keys.input("default", done.file!.id))).toBe(text);

    const batch = await t.client.batches.create({ input_file_id: done.file!.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    expect(await waitForBatch(t.client, batch.id, ["in_progress", "failed"])).toMatchObject({ status: "in_progress", request_counts: { total: 3 } });
  });

  test("complete checks the parts: known, listed once, adding up to bytes, matching md5", async () => {
    const upload = await t.client.uploads.create({ bytes: 10, filename: "x.jsonl", mime_type: "application/jsonl", purpose: "batch" });
    const p1 = await addPart(upload.id, Buffer.from("12345"));
    const p2 = await addPart(upload.id, Buffer.from("6789"));

    const short = await rejection(t.client.uploads.complete(upload.id, { part_ids: [p1.id, p2.id] }));
    expect(short).toBeInstanceOf(BadRequestError);
    expect(short.error).toMatchObject({ param: "part_ids", code: "bytes_mismatch" });
    const dup = await rejection(t.client.uploads.complete(upload.id, { part_ids: [p1.id, p1.id] }));
    expect(dup.error).toMatchObject({ param: "part_ids", code: "duplicate_part_id" });
    const unknown = await rejection(t.client.uploads.complete(upload.id, { part_ids: [p1.id, "part_nope"] }));
    expect(unknown.error).toMatchObject({ param: "part_ids", code: "invalid_value" });

    const p3 = await addPart(upload.id, Buffer.from("0"));
    const wrongMd5 = await rejection(t.client.uploads.complete(upload.id, { part_ids: [p1.id, p2.id, p3.id], md5: "0".repeat(32) }));
    expect(wrongMd5).toBeInstanceOf(BadRequestError);
    expect(wrongMd5.error).toMatchObject({ param: "md5", code: "md5_mismatch" });
    // Nothing was published and nothing is left of the attempt but the staged parts.
    expect((await call(t.url, `/v1/files?limit=10000`)).body.data.filter((f: { filename: string }) => f.filename === "x.jsonl")).toEqual([]);
    expect(await staged(upload.id)).toHaveLength(3);

    const md5 = createHash("md5").update("1234567890").digest("hex");
    const done = await t.client.uploads.complete(upload.id, { part_ids: [p1.id, p2.id, p3.id], md5 });
    expect(await (await t.client.files.content(done.file!.id)).text()).toBe("1234567890");
    expect(await listKeys(t.ctx, "inputs/default/")).toContain(keys.input("default", done.file!.id));
  });

  test("cancel drops the parts; a cancelled upload takes no more parts and cannot complete", async () => {
    const upload = await t.client.uploads.create({ bytes: 6, filename: "c.jsonl", mime_type: "application/jsonl", purpose: "batch" });
    const part = await addPart(upload.id, Buffer.from("abcdef"));
    const cancelled = await t.client.uploads.cancel(upload.id);
    expect(cancelled).toMatchObject({ id: upload.id, status: "cancelled", file: null });
    expect(await staged(upload.id)).toEqual([]);
    expect(await t.client.uploads.cancel(upload.id)).toEqual(cancelled);

    const late = await rejection(addPart(upload.id, Buffer.from("x")));
    expect(late).toBeInstanceOf(ConflictError);
    expect(late.error).toMatchObject({ code: "invalid_upload_status" });
    expect(await rejection(t.client.uploads.complete(upload.id, { part_ids: [part.id] }))).toBeInstanceOf(ConflictError);
    expect(await staged(upload.id)).toEqual([]);
  });

  test("an upload left pending past its hour expires: the sweeper drops its parts", async () => {
    const upload = await t.client.uploads.create({ bytes: 4, filename: "e.jsonl", mime_type: "application/jsonl", purpose: "batch" });
    const part = await addPart(upload.id, Buffer.from("abcd"));
    // Past its hour but not yet swept: it takes nothing more.
    const lapsed = new Date(Date.now() - 60_000);
    await t.ctx.db.updateTable("uploads").set({ expires_at: lapsed }).where("id", "=", upload.id).execute();
    const unswept = await rejection(t.client.uploads.complete(upload.id, { part_ids: [part.id] }));
    expect(unswept.error).toMatchObject({ code: "upload_expired" });
    expect((await rejection(addPart(upload.id, Buffer.from("e")))).error).toMatchObject({ code: "upload_expired" });

    const deps = { db: t.ctx.db, s3: t.ctx.s3, bucket: t.ctx.bucket, log: testLog };
    expect(await sweepExpiredOpenAIUploads(deps, new Date(lapsed.getTime() - 1000))).toBe(0);
    expect(await sweepExpiredOpenAIUploads(deps)).toBe(1);
    expect(await staged(upload.id)).toEqual([]);
    expect((await t.ctx.db.selectFrom("uploads").select("status").where("id", "=", upload.id).executeTakeFirst())?.status).toBe("expired");
    const late = await rejection(t.client.uploads.complete(upload.id, { part_ids: [part.id] }));
    expect(late).toBeInstanceOf(ConflictError);
    expect(late.message).toContain("expired");
  });

  test("bad requests: unknown ids, limits, and parameters", async () => {
    expect(await rejection(t.client.uploads.complete("upload_nope", { part_ids: [] }))).toBeInstanceOf(NotFoundError);
    expect(await rejection(t.client.uploads.cancel("upload_nope"))).toBeInstanceOf(NotFoundError);
    expect(await rejection(addPart("upload_nope", Buffer.from("x")))).toBeInstanceOf(NotFoundError);

    const tooBig = await rejection(t.client.uploads.create({ bytes: 32 * MiB + 1, filename: "b.jsonl", mime_type: "application/jsonl", purpose: "batch" }));
    expect(tooBig).toBeInstanceOf(BadRequestError);
    expect(tooBig.error).toMatchObject({ param: "bytes", code: "file_too_large" });
    const purpose = await rejection(t.client.uploads.create({ bytes: 1, filename: "b.jsonl", mime_type: "application/jsonl", purpose: "fine-tune" }));
    expect(purpose.error).toMatchObject({ param: "purpose", code: "invalid_value" });
    const expiry = await postJson(t.url, "/v1/uploads", {
      bytes: 1,
      filename: "b.jsonl",
      mime_type: "application/jsonl",
      purpose: "batch",
      expires_after: { anchor: "created_at", seconds: 60 },
    });
    expect(expiry.status).toBe(400);
    expect(expiry.body.error).toMatchObject({ param: "expires_after.seconds", code: "invalid_value" });

    // A part bigger than the whole declared upload can never fit, so it is refused while it streams.
    const small = await t.client.uploads.create({ bytes: 3, filename: "s.jsonl", mime_type: "application/jsonl", purpose: "batch" });
    const over = await rejection(addPart(small.id, Buffer.from("four")));
    expect(over.status).toBe(400);
    expect(over.error).toMatchObject({ param: "data", code: "upload_too_large" });
    expect(await staged(small.id)).toEqual([]);
    const form = new FormData();
    form.set("other", "x");
    const missing = await call(t.url, `/v1/uploads/${small.id}/parts`, { method: "POST", body: form });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toMatchObject({ param: "data", code: "missing_required_parameter" });
  });
});

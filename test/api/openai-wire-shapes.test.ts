import { BadRequestError, NotFoundError, RateLimitError, type APIError } from "openai";
import type { Batch, FileDeleted, FileObject, Model, Upload } from "openai/resources";
import type { UploadPart } from "openai/resources/uploads/parts";
import { toFile } from "openai/uploads";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { batchObject, fileDeletedObject, fileObject, listObject, modelListObject, uploadObject, uploadPartObject } from "@barge/api/testing";
import { call, chatLine, jsonl, startBareApi, type TestApi } from "../support/api-harness.js";

// ---- Compile time: the response schemas against the SDK's own type definitions ----
//
// `Wire<T>` is what OpenAI sends for a type of the SDK: every field present, the optional ones as
// null when they have no value (the SDK's types mark them optional; OpenAI's API answers null).
// Each schema's type must be assignable to the `Wire` of the SDK type, so every field the SDK
// declares is there with its type; and the fields the SDK does not declare must be exactly
// Barge's documented extensions. The runtime tests below then parse every answer with the same
// schemas, strictly, so each key the SDK declares is checked on the wire without a hand-made list.
type Wire<T> = T extends readonly (infer U)[]
  ? Wire<U>[]
  : T extends object
    ? { [K in keyof T]-?: undefined extends T[K] ? Wire<Exclude<T[K], undefined>> | null : Wire<T[K]> }
    : T;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Expect<T extends true> = T;
type Conforms<Ours, Sdk> = Ours extends Wire<Sdk> ? true : false;
type Extra<Ours, Sdk> = Exclude<keyof Ours, keyof Sdk>;

/** A schema's output type, without importing zod here (the root package does not depend on it). */
type Out<S extends { parse(v: unknown): unknown }> = ReturnType<S["parse"]>;

type BatchExtensions =
  | "output_expires_after"
  | "priority"
  | "retry_of"
  | "progress"
  | "output_location"
  | "results_url"
  | "throughput_tokens_per_sec"
  | "estimated_completion"
  | "paused_at"
  | "max_failure_rate"
  | "min_requests"
  | "cancel_reason";

export type SdkTypeChecks = [
  Expect<Conforms<Out<typeof batchObject>, Batch>>,
  Expect<Same<Extra<Out<typeof batchObject>, Batch>, BatchExtensions>>,
  Expect<Conforms<Out<typeof fileObject>, FileObject>>,
  Expect<Same<Extra<Out<typeof fileObject>, FileObject>, never>>,
  Expect<Conforms<Out<typeof fileDeletedObject>, FileDeleted>>,
  Expect<Same<Extra<Out<typeof fileDeletedObject>, FileDeleted>, never>>,
  Expect<Conforms<Out<typeof uploadObject>, Upload>>,
  Expect<Same<Extra<Out<typeof uploadObject>, Upload>, never>>,
  Expect<Conforms<Out<typeof uploadPartObject>, UploadPart>>,
  Expect<Same<Extra<Out<typeof uploadPartObject>, UploadPart>, never>>,
  Expect<Conforms<Out<typeof modelListObject>["data"][number], Model>>,
  Expect<Same<Extra<Out<typeof modelListObject>["data"][number], Model>, never>>,
  // The check itself can fail: a field of the wrong type, or one missing, is caught.
  Expect<Same<Conforms<{ id: number }, { id: string }>, false>>,
  Expect<Same<Conforms<{ a: string }, { a: string; b?: number }>, false>>,
];

// ---- Run time ----

/** `value` parsed strictly by `schema`: every declared key present with its type, no undeclared key. */
function conforms<S extends { parse(v: unknown): unknown; strict(): { safeParse(v: unknown): { success: boolean; error?: { issues: unknown[] } } } }>(
  schema: S,
  value: unknown,
): Out<S> {
  const result = schema.strict().safeParse(value);
  if (!result.success) throw new Error(`does not conform: ${JSON.stringify(result.error?.issues)}\n${JSON.stringify(value)}`);
  return value as Out<S>;
}

async function rejection(p: Promise<unknown>): Promise<APIError> {
  return p.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (err: APIError) => err,
  );
}

describe("the openai SDK parses every answer with its own types", () => {
  let t: TestApi;
  beforeAll(async () => {
    // No background loops: batches stay `validating`, so states and pages are exact.
    t = await startBareApi({ MAX_ACTIVE_BATCHES: "50" });
  });
  afterAll(async () => {
    await t?.close();
  });

  const upload = async (name: string, lines = 1) =>
    t.client.files.create({ file: await toFile(Buffer.from(jsonl(Array.from({ length: lines }, (_, i) => chatLine(`${name}${i}`)))), `${name}.jsonl`), purpose: "batch" });

  test("files: create, list with auto-pagination, retrieve, content, delete", async () => {
    const created: Out<typeof fileObject>[] = [];
    for (const name of ["f0", "f1", "f2", "f3", "f4"]) created.push(conforms(fileObject, await upload(name, 2)));
    const newestFirst = created.map((f) => f.id).reverse();

    const walked: string[] = [];
    for await (const f of t.client.files.list({ limit: 2 })) walked.push(conforms(fileObject, f).id);
    expect(walked).toEqual(newestFirst);
    const pages: number[] = [];
    for await (const page of (await t.client.files.list({ limit: 2 })).iterPages()) pages.push(page.data.length);
    expect(pages).toEqual([2, 2, 1]);
    conforms(listObject(fileObject), (await call(t.url, "/v1/files?limit=2")).body);
    const ascending: string[] = [];
    for await (const f of t.client.files.list({ limit: 3, order: "asc", purpose: "batch" })) ascending.push(f.id);
    expect(ascending).toEqual(created.map((f) => f.id));
    expect((await t.client.files.list({ purpose: "batch_output" })).data).toEqual([]);

    const first = created[0]!;
    expect(conforms(fileObject, await t.client.files.retrieve(first.id))).toEqual(first);
    expect(await (await t.client.files.content(first.id)).text()).toBe(jsonl([chatLine("f00"), chatLine("f01")]));
    expect(conforms(fileDeletedObject, await t.client.files.delete(first.id))).toEqual({ id: first.id, object: "file", deleted: true });
    expect(await rejection(t.client.files.retrieve(first.id))).toBeInstanceOf(NotFoundError);
  });

  test("batches: create, retrieve, list across pages, cancel", async () => {
    const file = await upload("b", 3);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const b = await t.client.batches.create({
        input_file_id: file.id,
        endpoint: "/v1/chat/completions",
        completion_window: "24h",
        metadata: { i: String(i) },
        output_expires_after: { anchor: "created_at", seconds: 3600 },
      });
      conforms(batchObject, b);
      expect(b).toMatchObject({ object: "batch", status: "validating", input_file_id: file.id, metadata: { i: String(i) }, request_counts: { total: 0, completed: 0, failed: 0 } });
      expect(b.usage).toEqual({ input_tokens: 0, input_tokens_details: { cached_tokens: 0 }, output_tokens: 0, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 0 });
      expect(b.expires_at! - b.created_at).toBe(86_400);
      ids.push(b.id);
    }
    const newestFirst = [...ids].reverse();
    expect(conforms(batchObject, await t.client.batches.retrieve(ids[0]!)).metadata).toEqual({ i: "0" });

    const walked: string[] = [];
    for await (const b of t.client.batches.list({ limit: 2 })) walked.push(conforms(batchObject, b).id);
    expect(walked).toEqual(newestFirst);
    const pages: number[] = [];
    for await (const page of (await t.client.batches.list({ limit: 2 })).iterPages()) pages.push(page.data.length);
    expect(pages).toEqual([2, 2, 1]);
    const body = conforms(listObject(batchObject), (await call(t.url, "/v1/batches?limit=2")).body);
    expect(body).toMatchObject({ has_more: true, first_id: newestFirst[0], last_id: newestFirst[1] });
    expect((await t.client.batches.list({ limit: 2, after: newestFirst[3]! })).data.map((b) => b.id)).toEqual([newestFirst[4]]);

    const cancelled = conforms(batchObject, await t.client.batches.cancel(ids[0]!));
    expect(cancelled.status).toBe("cancelled");
    expect(typeof cancelled.cancelled_at).toBe("number");
    expect((await call(t.url, "/v1/batches?status=cancelled")).body.data.map((b: Batch) => b.id)).toEqual([ids[0]]);
  });

  test("uploads: create, parts.create, complete", async () => {
    const text = jsonl([chatLine("u0"), chatLine("u1")]);
    const u = conforms(uploadObject, await t.client.uploads.create({ bytes: text.length, filename: "u.jsonl", mime_type: "application/jsonl", purpose: "batch" }));
    const part = conforms(uploadPartObject, await t.client.uploads.parts.create(u.id, { data: await toFile(Buffer.from(text), "u.jsonl") }));
    expect(part).toMatchObject({ object: "upload.part", upload_id: u.id });
    const done = conforms(uploadObject, await t.client.uploads.complete(u.id, { part_ids: [part.id] }));
    expect(done.status).toBe("completed");
    expect(conforms(fileObject, done.file)).toMatchObject({ bytes: text.length, status: "processed", purpose: "batch" });
  });

  test("unknown ids are NotFoundError", async () => {
    const calls: [string, () => Promise<unknown>, string][] = [
      ["files.retrieve", () => t.client.files.retrieve("file-nope"), "file_id"],
      ["files.content", () => t.client.files.content("file-nope"), "file_id"],
      ["files.delete", () => t.client.files.delete("file-nope"), "file_id"],
      ["batches.retrieve", () => t.client.batches.retrieve("batch_nope"), "batch_id"],
      ["batches.cancel", () => t.client.batches.cancel("batch_nope"), "batch_id"],
      ["batches.create", () => t.client.batches.create({ input_file_id: "file-nope", endpoint: "/v1/chat/completions", completion_window: "24h" }), "input_file_id"],
      ["uploads.complete", () => t.client.uploads.complete("upload_nope", { part_ids: [] }), "upload_id"],
      ["uploads.cancel", () => t.client.uploads.cancel("upload_nope"), "upload_id"],
    ];
    for (const [name, send, param] of calls) {
      const err = await rejection(send());
      expect(err, name).toBeInstanceOf(NotFoundError);
      expect(err.error, name).toMatchObject({ type: "invalid_request_error", code: "not_found", param });
    }
  });

  test("bad input is BadRequestError naming the param", async () => {
    const file = await upload("bad");
    const create = (over: Record<string, unknown>) =>
      rejection(t.client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", ...over }));
    const seventeen = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"]));
    const cases: [Record<string, unknown>, string][] = [
      [{ metadata: seventeen }, "metadata"],
      [{ metadata: { ["k".repeat(65)]: "v" } }, "metadata"],
      [{ metadata: { k: "v".repeat(513) } }, "metadata"],
      [{ endpoint: "/v1/moderations" }, "endpoint"],
      [{ completion_window: "1h" }, "completion_window"],
      [{ output_expires_after: { anchor: "created_at", seconds: 60 } }, "output_expires_after.seconds"],
    ];
    for (const [over, param] of cases) {
      const err = await create(over);
      expect(err, param).toBeInstanceOf(BadRequestError);
      expect(err.param, param).toBe(param);
    }
    const purpose = await rejection(t.client.files.create({ file: await toFile(Buffer.from("{}\n"), "x.jsonl"), purpose: "fine-tune" }));
    expect(purpose).toBeInstanceOf(BadRequestError);
    expect(purpose.param).toBe("purpose");
    const uploadBytes = await rejection(t.client.uploads.create({ bytes: -1, filename: "x", mime_type: "application/jsonl", purpose: "batch" }));
    expect(uploadBytes).toBeInstanceOf(BadRequestError);
    expect(uploadBytes.param).toBe("bytes");
  });
});

describe("the openai SDK over a global limit", () => {
  test("RateLimitError, with Retry-After", async () => {
    const t = await startBareApi({ MAX_ACTIVE_BATCHES: "1" });
    try {
      const file = await t.client.files.create({ file: await toFile(Buffer.from(jsonl([chatLine("a")])), "a.jsonl"), purpose: "batch" });
      const create = () => t.client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
      await create();
      const err = await rejection(create());
      expect(err).toBeInstanceOf(RateLimitError);
      expect(err.headers?.get("retry-after")).toBe("60");
    } finally {
      await t.close();
    }
  });
});

import { createHash, randomBytes } from "node:crypto";
import { RateLimitError } from "openai";
import { toFile } from "openai/uploads";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { acceptObject } from "@barge/api/testing";
import { sql } from "kysely";
import { claimLandedObject, recordLandedObjects, type TenantLimitOverrides } from "@barge/core";
import { call, chatLine, jsonl, sdkClient, startBareApi, type TestApi } from "../support/api-harness.js";
import { testLog } from "../support/context.js";
import { put } from "../support/inbox.js";
import { listKeys, seedBatch } from "../support/seed.js";

// Each tenant's limits, on one bare API (no validator: created batches stay `validating`, so
// they stay active) whose defaults are 3 batch creates and 4 file uploads a minute. Every test
// acts as tenants of its own, each with a key of its own, so no test spends another's tokens.

let t: TestApi;
beforeAll(async () => {
  t = await startBareApi({ TENANT_BATCH_CREATES_PER_MINUTE: "3", TENANT_FILE_UPLOADS_PER_MINUTE: "4", BARGE_TENANT: "trig" });
});
afterAll(() => t?.close());

/** A new tenant with its own key (and the admin's overrides, when given), as seen over HTTP. */
async function tenant(name: string, limits?: TenantLimitOverrides) {
  const key = `sk-${name}-${randomBytes(12).toString("hex")}`;
  await t.ctx.db
    .insertInto("api_keys")
    .values({ id: `key_${randomBytes(8).toString("hex")}`, tenant: name, name: "test", key_hash: createHash("sha256").update(key).digest("hex"), redacted: `sk-…${key.slice(-4)}` })
    .execute();
  if (limits) await t.ctx.db.insertInto("tenants").values({ tenant: name, limits: JSON.stringify(limits) }).execute();
  const auth = { authorization: `Bearer ${key}` };
  const file = async () => {
    const form = new FormData();
    form.set("purpose", "batch");
    form.set("file", new Blob([jsonl([chatLine("x")])]), "in.jsonl");
    return call(t.url, "/v1/files", { method: "POST", headers: auth, body: form });
  };
  const json = (path: string, body: unknown) => call(t.url, path, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify(body) });
  const oneShot = (fields: Record<string, string> = {}) => {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.set(k, v);
    form.set("file", new Blob([jsonl([chatLine("o")])]), "oneshot.jsonl");
    return call(t.url, "/v1/batches", { method: "POST", headers: auth, body: form });
  };
  const created = await file();
  expect(created.status).toBe(200);
  const fileId = created.body.id as string;
  const batch = (extra: Record<string, unknown> = {}) => json("/v1/batches", { input_file_id: fileId, endpoint: "/v1/chat/completions", completion_window: "24h", ...extra });
  return { name, key, client: sdkClient(t.url, key), file, json, oneShot, batch, fileId };
}

/** The three x-ratelimit headers of an answer. */
const rateHeaders = (h: Headers) => [h.get("x-ratelimit-limit-requests"), h.get("x-ratelimit-remaining-requests"), h.get("x-ratelimit-reset-requests")];

/** Seconds in an OpenAI duration such as `40s` or `1m0s`. */
function seconds(d: string | null): number {
  const m = /^(?:(\d+)m)?(\d+)s$/.exec(d ?? "");
  if (!m) throw new Error(`not a duration: ${d}`);
  return Number(m[1] ?? 0) * 60 + Number(m[2]);
}

describe("batch_creates_per_minute", () => {
  test("a burst of exactly the limit, counted down in the headers; then OpenAI's 429 with Retry-After", async () => {
    const a = await tenant("creates-a");
    const answers = [await a.batch(), await a.batch(), await a.batch()];
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(answers.map((r) => rateHeaders(r.headers).slice(0, 2))).toEqual([["3", "2"], ["3", "1"], ["3", "0"]]);
    // One interval (20 s) per create: the first is back in 20 s, the burst whole in a minute.
    expect(answers[0]!.headers.get("x-ratelimit-reset-requests")).toBe("20s");
    expect(seconds(answers[2]!.headers.get("x-ratelimit-reset-requests"))).toBeGreaterThan(50);
    expect(answers[2]!.headers.get("x-ratelimit-reset-requests")).toMatch(/^(1m0s|5\ds)$/);

    const refused = await a.batch();
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ type: "rate_limit_error", code: "rate_limit_exceeded", param: null });
    expect(refused.body.error.message).toMatch(/^Rate limit reached for batch creates \(batch_creates_per_minute\): limit 3 per minute\. Please try again in \d+s\.$/);
    const wait = Number(refused.headers.get("retry-after"));
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(20);
    expect(rateHeaders(refused.headers).slice(0, 2)).toEqual(["3", "0"]);

    // The SDK sees its own RateLimitError, with the headers its retry logic reads.
    const err = await a.client.batches.create({ input_file_id: a.fileId, endpoint: "/v1/chat/completions", completion_window: "24h" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitError);
    expect((err as RateLimitError).headers.get("retry-after")).toMatch(/^\d+$/);
    // Refused creates made nothing.
    expect(await t.ctx.db.selectFrom("batches").select("id").where("tenant", "=", a.name).execute()).toHaveLength(3);
  });

  test("the one-shot form and a retry count as creates; one tenant's burst never touches another's", async () => {
    const a = await tenant("creates-b");
    const b = await tenant("creates-c");
    expect((await a.oneShot()).status).toBe(200);
    expect((await a.batch()).status).toBe(200);
    expect((await a.batch()).status).toBe(200);
    const inputs = await listKeys(t.ctx, `inputs/${a.name}/`);
    const refused = await a.oneShot();
    expect([refused.status, refused.body.error.code]).toEqual([429, "rate_limit_exceeded"]);
    // Refused before the upload: no object and no row.
    expect(await listKeys(t.ctx, `inputs/${a.name}/`)).toEqual(inputs);
    const someBatch = (await t.ctx.db.selectFrom("batches").select("id").where("tenant", "=", a.name).executeTakeFirstOrThrow()).id;
    expect((await a.json(`/v1/batches/${someBatch}/retry`, {})).status).toBe(429);

    const other = await b.batch();
    expect([other.status, ...rateHeaders(other.headers)]).toEqual([200, "3", "2", "20s"]);
  });

  test("the admin's override beats the default; null is unlimited and sends no rate headers", async () => {
    const one = await tenant("creates-one", { batch_creates_per_minute: 1 });
    expect(rateHeaders((await one.batch()).headers)).toEqual(["1", "0", "1m0s"]);
    const refused = await one.batch();
    expect([refused.status, refused.headers.get("x-ratelimit-limit-requests")]).toEqual([429, "1"]);
    // The one token comes back a minute after it was taken.
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(50);
    expect(Number(refused.headers.get("retry-after"))).toBeLessThanOrEqual(60);

    const free = await tenant("creates-free", { batch_creates_per_minute: null });
    const answers = await Promise.all(Array.from({ length: 8 }, () => free.batch()));
    expect(answers.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect(answers.map((r) => r.headers.get("x-ratelimit-limit-requests"))).toEqual(Array(8).fill(null));
  });
});

describe("file_uploads_per_minute", () => {
  test("files, presigned files, uploads and one-shot forms all count; the refused ones write nothing", async () => {
    // The tenant helper's own file is the first of the 4.
    const a = await tenant("uploads-a");
    const presign = await a.json("/v1/files/presign", { filename: "p.jsonl", purpose: "batch", bytes: 10 });
    const upload = await a.json("/v1/uploads", { filename: "u.jsonl", purpose: "batch", bytes: 10, mime_type: "application/jsonl" });
    const oneShot = await a.oneShot();
    expect([presign.status, upload.status, oneShot.status]).toEqual([200, 200, 200]);
    expect(rateHeaders(presign.headers).slice(0, 2)).toEqual(["4", "2"]);
    expect(rateHeaders(upload.headers).slice(0, 2)).toEqual(["4", "1"]);
    // The form spent a batch create too (2 of 3 left); the headers show the tighter limit.
    expect(rateHeaders(oneShot.headers).slice(0, 2)).toEqual(["4", "0"]);

    const files = await t.ctx.db.selectFrom("files").select("id").where("tenant", "=", a.name).execute();
    const objects = await listKeys(t.ctx, "");
    const refused = [await a.file(), await a.json("/v1/files/presign", { filename: "p.jsonl", purpose: "batch", bytes: 10 }), await a.json("/v1/uploads", { filename: "u.jsonl", purpose: "batch", bytes: 10, mime_type: "application/jsonl" }), await a.oneShot()];
    expect(refused.map((r) => [r.status, r.body.error.code])).toEqual(Array(4).fill([429, "rate_limit_exceeded"]));
    expect(refused[0]!.body.error.message).toContain("file uploads (file_uploads_per_minute): limit 4 per minute");
    expect(await t.ctx.db.selectFrom("files").select("id").where("tenant", "=", a.name).execute()).toEqual(files);
    expect(await t.ctx.db.selectFrom("uploads").select("id").where("tenant", "=", a.name).execute()).toHaveLength(1);
    expect(await listKeys(t.ctx, "")).toEqual(objects);

    // Another tenant uploads as if nothing happened.
    const b = await tenant("uploads-b");
    expect(rateHeaders((await b.file()).headers).slice(0, 2)).toEqual(["4", "2"]);
  });
});

describe("quotas", () => {
  test("batches_per_day: the next create is a 429 until midnight UTC, and cancelling frees nothing", async () => {
    const a = await tenant("day-a", { batches_per_day: 2, batch_creates_per_minute: null });
    const first = await a.batch();
    expect((await a.batch()).status).toBe(200);
    const refused = await a.batch();
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ type: "rate_limit_error", code: "batches_per_day_exceeded" });
    expect(refused.body.error.message).toBe("Tenant 'day-a' has created 2 batches today (UTC), its batches_per_day limit of 2; retry after midnight UTC.");
    const now = new Date();
    const toMidnight = (Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1) - now.getTime()) / 1000;
    expect(Math.abs(Number(refused.headers.get("retry-after")) - toMidnight)).toBeLessThan(30);
    expect((await a.json(`/v1/batches/${first.body.id}/cancel`, {})).status).toBe(200);
    expect((await a.batch()).body.error.code).toBe("batches_per_day_exceeded");
    expect((await a.oneShot()).body.error.code).toBe("batches_per_day_exceeded");

    // Yesterday's batches do not count.
    await sql`UPDATE batches SET created_at = created_at - interval '1 day' WHERE tenant = ${a.name}`.execute(t.ctx.db);
    expect((await a.batch()).status).toBe(200);
  });

  test("max_active_batches: 429 naming the limit; a cancelled batch frees its slot; other tenants are not counted", async () => {
    const a = await tenant("active-a", { max_active_batches: 2, batch_creates_per_minute: null });
    const b = await tenant("active-b", { max_active_batches: 2 });
    const first = await a.batch();
    expect((await a.batch()).status).toBe(200);
    const refused = await a.batch();
    expect([refused.status, refused.body.error.code, refused.headers.get("retry-after")]).toEqual([429, "max_active_batches_exceeded", "60"]);
    expect(refused.body.error.message).toBe("Tenant 'active-a' has 2 active batches, its max_active_batches limit of 2; retry once some have finished.");
    expect((await b.batch()).status).toBe(200);
    await a.json(`/v1/batches/${first.body.id}/cancel`, {});
    expect((await a.batch()).status).toBe(200);
    expect((await a.batch()).status).toBe(429);
  });

  test("max_queued_requests: the tenant's own enqueued, unrun requests count", async () => {
    const a = await tenant("queued-a", { max_queued_requests: 5 });
    await seedBatch(t.ctx, Array.from({ length: 4 }, (_, i) => chatLine(`q${i}`)), { tenant: a.name });
    // Another tenant's queue is not this one's.
    await seedBatch(t.ctx, Array.from({ length: 9 }, (_, i) => chatLine(`o${i}`)), { tenant: "queued-other" });
    expect((await a.batch()).status).toBe(200);
    await seedBatch(t.ctx, [chatLine("q4")], { tenant: a.name });
    const refused = await a.batch();
    expect([refused.status, refused.body.error.code]).toEqual([429, "max_queued_requests_exceeded"]);
    expect(refused.body.error.message).toBe("Tenant 'queued-a' has 5 requests queued, at or above its max_queued_requests limit of 5; retry once some have run.");
  });

  test("racing creates of one tenant cannot all slip under max_active_batches", async () => {
    const a = await tenant("active-race", { max_active_batches: 3, batch_creates_per_minute: null });
    const answers = await Promise.all(Array.from({ length: 10 }, () => a.batch()));
    expect(answers.filter((r) => r.status === 200)).toHaveLength(3);
    expect(new Set(answers.filter((r) => r.status !== 200).map((r) => r.body.error.code))).toEqual(new Set(["max_active_batches_exceeded"]));
  });
});

describe("max_priority", () => {
  test("a priority above the cap is a 400 naming it, JSON and form; at the cap it runs; no priority is 0", async () => {
    const a = await tenant("prio-a", { max_priority: 5, batch_creates_per_minute: null });
    const over = await a.batch({ priority: 6 });
    expect([over.status, over.body.error]).toEqual([400, { type: "invalid_request_error", code: "priority_above_cap", param: "priority", message: "priority 6 is above this tenant's cap of 5 (max_priority)." }]);
    const inputs = await listKeys(t.ctx, `inputs/${a.name}/`);
    const form = await a.oneShot({ priority: "9" });
    expect([form.status, form.body.error.code]).toEqual([400, "priority_above_cap"]);
    expect(await listKeys(t.ctx, `inputs/${a.name}/`)).toEqual(inputs);
    const at = await a.batch({ priority: 5 });
    const none = await a.batch();
    const rows = await t.ctx.db.selectFrom("batches").select(["id", "priority"]).where("id", "in", [at.body.id, none.body.id]).execute();
    expect(Object.fromEntries(rows.map((r) => [r.id, r.priority]))).toEqual({ [at.body.id]: 5, [none.body.id]: 0 });
  });

  test("a cap below 0 lowers the default priority to the cap", async () => {
    const a = await tenant("prio-neg", { max_priority: -10 });
    const created = await a.batch();
    const row = await t.ctx.db.selectFrom("batches").select("priority").where("id", "=", created.body.id).executeTakeFirstOrThrow();
    expect(row.priority).toBe(-10);
  });
});

describe("the S3 trigger", () => {
  const deps = () => ({ db: t.ctx.db, s3: t.ctx.s3, bucket: t.ctx.bucket, config: t.ctx.config, log: testLog });

  /** Lands `key` and lets the acceptor try it once. */
  async function land(key: string, metadata: Record<string, string> = {}) {
    const etag = await put(t.ctx, key, jsonl([chatLine("s")]), metadata);
    await recordLandedObjects(t.ctx.db, [{ bucket: t.ctx.bucket, key, etag, versionId: null, size: 1 }]);
    const claimed = await claimLandedObject(t.ctx.db, { leaseSeconds: 30 });
    expect(claimed?.key).toBe(key);
    return acceptObject(deps(), claimed!).catch((e: unknown) => e);
  }

  test("a landed object over the tenant's quota waits (429 to the acceptor); a priority above the cap fails its batch", async () => {
    await t.ctx.db.insertInto("tenants").values({ tenant: "trig", limits: JSON.stringify({ max_active_batches: 1, max_priority: 2 }) }).execute();
    const first = await land("inbox/trig/one.jsonl");
    expect(first).toMatchObject({ outcome: "batch" });
    const waiting = await land("inbox/trig/two.jsonl");
    expect(waiting).toMatchObject({ status: 429, code: "max_active_batches_exceeded" });
    const row = await t.ctx.db.selectFrom("s3_objects").select(["outcome", "batch_id"]).where("key", "=", "inbox/trig/two.jsonl").executeTakeFirstOrThrow();
    expect(row).toEqual({ outcome: null, batch_id: null });

    await t.ctx.db.updateTable("tenants").set({ limits: JSON.stringify({ max_priority: 2 }) }).where("tenant", "=", "trig").execute();
    const high = await land("inbox/trig/high.jsonl", { "barge-priority": "3" });
    expect(high).toMatchObject({ outcome: "batch" });
    const batch = await t.ctx.db.selectFrom("batches").select(["status", "errors"]).where("id", "=", (high as { batchId: string }).batchId).executeTakeFirstOrThrow();
    expect(batch.status).toBe("failed");
    expect(JSON.stringify(batch.errors)).toContain('"code":"priority_above_cap"');
    expect(JSON.stringify(batch.errors)).toContain("x-amz-meta-barge-priority");
  });
});

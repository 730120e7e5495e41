import { createHash } from "node:crypto";
import { toFile } from "openai/uploads";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { call, chatLine, jsonl, sdkClient } from "../support/api-harness.js";
import { createTestContext, type TestContext } from "../support/context.js";
import { serveEventsApp } from "../support/s3-events.js";

// Tenant keys made by the admin, on real Postgres, S3 and HTTP: two API apps on one database
// and bucket are two replicas, so a revoke on one must hold on the other at once.

const ADMIN = "admin-key-0123456789abcdef";
const SINGLE = "single-key-0123456789abcdef";
const NO_KEY = "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.";

type Served = { url: string; close(): Promise<void> };
let ctx: TestContext;
let a: Served;
let b: Served;
const closing: Served[] = [];

beforeAll(async () => {
  ctx = await createTestContext({ BARGE_ADMIN_KEY: ADMIN });
  [a, b] = await Promise.all([serveEventsApp(ctx, {}), serveEventsApp(ctx, {})]);
});
afterAll(async () => {
  for (const s of [...closing, a, b]) await s?.close();
  await ctx?.close();
});

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** An admin call to replica `on`, with a JSON body when given. */
function admin(on: Served, path: string, init: { method?: string; body?: unknown; key?: string } = {}) {
  return call(on.url, path, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers: { ...bearer(init.key ?? ADMIN), ...(init.body === undefined ? {} : { "content-type": "application/json" }) },
    ...(init.body === undefined ? {} : { body: typeof init.body === "string" ? init.body : JSON.stringify(init.body) }),
  });
}

async function createKey(tenant: string, name: string): Promise<{ id: string; key: string }> {
  const r = await admin(a, "/v1/admin/keys", { body: { tenant, name } });
  expect(r.status).toBe(201);
  return r.body;
}

const upload = async (url: string, key: string, filename: string) =>
  sdkClient(url, key).files.create({ file: await toFile(Buffer.from(jsonl([chatLine("x")])), filename), purpose: "batch" });

describe("POST, GET and DELETE /v1/admin/keys", () => {
  test("create answers the secret once, 201; the database keeps only its SHA-256 and a redacted form", async () => {
    const before = Math.floor(Date.now() / 1000);
    const r = await admin(a, "/v1/admin/keys", { body: { tenant: "team-a", name: "ci runner" } });
    expect(r.status).toBe(201);
    const key = r.body.key as string;
    expect(key).toMatch(/^sk-barge-[A-Za-z0-9_-]{43}$/);
    expect(r.body).toEqual({ id: expect.stringMatching(/^key_[0-9a-z]{24}$/), object: "api_key", key, tenant: "team-a", name: "ci runner", redacted: `sk-…${key.slice(-4)}`, created_at: expect.any(Number), revoked_at: null });
    expect(r.body.created_at).toBeGreaterThanOrEqual(before - 1);

    const row = await ctx.db.selectFrom("api_keys").selectAll().where("id", "=", r.body.id).executeTakeFirstOrThrow();
    expect(row.key_hash).toBe(createHash("sha256").update(key).digest("hex"));
    expect([row.tenant, row.name, row.redacted, row.revoked_at]).toEqual(["team-a", "ci runner", `sk-…${key.slice(-4)}`, null]);
    // Neither the secret nor its random part is in any column.
    expect(JSON.stringify(row)).not.toContain(key.slice("sk-barge-".length, -4));
  });

  test("list: newest first, redacted, never a secret; ?tenant= filters; pages by after and limit", async () => {
    const k1 = await createKey("list-a", "one");
    const k2 = await createKey("list-b", "two");
    const k3 = await createKey("list-a", "three");
    const all = await admin(a, "/v1/admin/keys?limit=3");
    expect(all.status).toBe(200);
    expect(all.body.data.map((k: { id: string }) => k.id)).toEqual([k3.id, k2.id, k1.id]);
    expect(all.body).toMatchObject({ object: "list", first_id: k3.id, last_id: k1.id, has_more: true });
    expect(Object.keys(all.body.data[0]).sort()).toEqual(["created_at", "id", "name", "object", "redacted", "revoked_at", "tenant"]);
    for (const k of [k1, k2, k3]) expect(JSON.stringify(all.body)).not.toContain(k.key);

    const own = await admin(a, "/v1/admin/keys?tenant=list-a");
    expect(own.body.data.map((k: { id: string; name: string; redacted: string }) => [k.id, k.name, k.redacted])).toEqual([
      [k3.id, "three", `sk-…${k3.key.slice(-4)}`],
      [k1.id, "one", `sk-…${k1.key.slice(-4)}`],
    ]);
    const next = await admin(a, `/v1/admin/keys?tenant=list-a&after=${k3.id}&limit=1`);
    expect([next.body.data.map((k: { id: string }) => k.id), next.body.has_more]).toEqual([[k1.id], false]);
  });

  test("a created key works with the openai SDK and sees only its own tenant's files", async () => {
    const ka = await createKey("sdk-a", "a");
    const kb = await createKey("sdk-b", "b");
    const mine = await upload(a.url, ka.key, "a.jsonl");
    const theirs = await upload(b.url, kb.key, "b.jsonl");
    const listed = async (key: string) => (await sdkClient(b.url, key).files.list()).data.map((f) => f.id);
    expect(await listed(ka.key)).toEqual([mine.id]);
    expect(await listed(kb.key)).toEqual([theirs.id]);
    await expect(sdkClient(a.url, kb.key).files.retrieve(mine.id)).rejects.toMatchObject({ status: 404, code: "not_found" });
    const row = await ctx.db.selectFrom("files").select("tenant").where("id", "=", mine.id).executeTakeFirstOrThrow();
    expect(row.tenant).toBe("sdk-a");
  });

  test("revoke on one replica: the key gets 401 at once on the other; revoking is idempotent; an unknown id is a 404", async () => {
    const k = await createKey("revoke-a", "soon gone");
    const onB = sdkClient(b.url, k.key);
    expect((await onB.files.list()).data).toEqual([]);

    const del = await admin(a, `/v1/admin/keys/${k.id}`, { method: "DELETE" });
    expect([del.status, del.body]).toEqual([200, { id: k.id, object: "api_key", deleted: true }]);
    await expect(onB.files.list()).rejects.toMatchObject({ status: 401, code: "invalid_api_key" });
    await expect(sdkClient(a.url, k.key).batches.list()).rejects.toMatchObject({ status: 401, code: "invalid_api_key" });

    const listed = async () => (await admin(b, "/v1/admin/keys?tenant=revoke-a")).body.data;
    const [revoked] = await listed();
    expect(revoked).toMatchObject({ id: k.id, revoked_at: expect.any(Number) });
    const again = await admin(b, `/v1/admin/keys/${k.id}`, { method: "DELETE" });
    expect([again.status, again.body]).toEqual([200, { id: k.id, object: "api_key", deleted: true }]);
    expect((await listed())[0].revoked_at).toBe(revoked.revoked_at);

    for (const id of ["key_000000000000000000000000", "nope", "key_%00"]) {
      const r = await admin(a, `/v1/admin/keys/${id}`, { method: "DELETE" });
      const shown = decodeURIComponent(id);
      expect([r.status, r.body.error]).toEqual([404, { message: `No API key found with id '${shown}'.`, type: "invalid_request_error", param: "key_id", code: "not_found" }]);
    }
  });
});

describe("the admin key and tenant keys never cross", () => {
  test("a tenant key on an admin route is a 403 admin_key_required; the admin key on a tenant route a 403 tenant_key_required", async () => {
    const k = await createKey("cross-a", "x");
    for (const [method, path] of [["GET", "/v1/admin/keys"], ["DELETE", `/v1/admin/keys/${k.id}`], ["GET", "/v1/admin/tenants/cross-a"], ["PUT", "/v1/admin/tenants/cross-a"]] as const) {
      const r = await admin(a, path, { method, key: k.key, ...(method === "PUT" ? { body: { weight: 5 } } : {}) });
      expect([path, r.status, r.body.error.type, r.body.error.code]).toEqual([path, 403, "permission_error", "admin_key_required"]);
    }
    const posted = await admin(a, "/v1/admin/keys", { key: k.key, body: { tenant: "cross-a", name: "escalate" } });
    expect([posted.status, posted.body.error.code]).toEqual([403, "admin_key_required"]);
    expect(await ctx.db.selectFrom("api_keys").select("id").where("name", "=", "escalate").execute()).toEqual([]);

    await expect(sdkClient(a.url, ADMIN).files.list()).rejects.toMatchObject({ status: 403, code: "tenant_key_required" });
    const batches = await call(b.url, "/v1/batches", { headers: bearer(ADMIN) });
    expect([batches.status, batches.body.error.type, batches.body.error.code]).toEqual([403, "permission_error", "tenant_key_required"]);
  });

  test("admin routes without a key or with a wrong one are a 401", async () => {
    const none = await call(a.url, "/v1/admin/keys");
    expect([none.status, none.body.error]).toEqual([401, { message: NO_KEY, type: "invalid_request_error", param: null, code: "invalid_api_key" }]);
    const wrong = await admin(a, "/v1/admin/keys", { key: `${ADMIN}x` });
    expect([wrong.status, wrong.body.error.message, wrong.body.error.code]).toEqual([401, "Incorrect API key provided.", "invalid_api_key"]);
  });

  test("single-key mode (BARGE_API_KEY as BARGE_TENANT) works beside stored keys; neither sees the other's files", async () => {
    const single = await serveEventsApp(ctx, { config: { ...ctx.config, BARGE_API_KEY: SINGLE, BARGE_TENANT: "solo" } });
    closing.push(single);
    const stored = await createKey("beside-solo", "stored");
    const soloFile = await upload(single.url, SINGLE, "solo.jsonl");
    const storedFile = await upload(single.url, stored.key, "stored.jsonl");
    expect((await sdkClient(single.url, SINGLE).files.list()).data.map((f) => [f.id, f.filename])).toEqual([[soloFile.id, "solo.jsonl"]]);
    expect((await sdkClient(single.url, stored.key).files.list()).data.map((f) => f.id)).toEqual([storedFile.id]);
    const tenants = await ctx.db.selectFrom("files").select(["id", "tenant"]).where("id", "in", [soloFile.id, storedFile.id]).orderBy("tenant").execute();
    expect(tenants).toEqual([{ id: storedFile.id, tenant: "beside-solo" }, { id: soloFile.id, tenant: "solo" }]);
    // The single key is a tenant key too: it never reaches the admin routes.
    const r = await admin(single, "/v1/admin/keys", { key: SINGLE });
    expect([r.status, r.body.error.code]).toEqual([403, "admin_key_required"]);
  });
});

describe("without BARGE_ADMIN_KEY", () => {
  let other: TestContext;
  afterAll(async () => {
    await other?.close();
  });

  test("admin routes are a 401 even on an open API; a stored key closes the API until it is revoked", async () => {
    other = await createTestContext();
    const open = await serveEventsApp(other, {});
    const keyed = await serveEventsApp(other, { config: { ...other.config, BARGE_ADMIN_KEY: ADMIN } });
    closing.push(open, keyed);

    expect((await call(open.url, "/v1/files")).status).toBe(200);
    for (const headers of [{}, bearer(ADMIN), bearer("anything")]) {
      const r = await call(open.url, "/v1/admin/keys", { headers });
      expect([r.status, r.body.error]).toEqual([
        401,
        { message: "The admin routes are off: this server has no BARGE_ADMIN_KEY.", type: "invalid_request_error", param: null, code: "invalid_api_key" },
      ]);
    }

    const made = await admin(keyed, "/v1/admin/keys", { body: { tenant: "team-a", name: "first" } });
    expect(made.status).toBe(201);
    const closed = await call(open.url, "/v1/files");
    expect([closed.status, closed.body.error.message]).toEqual([401, NO_KEY]);
    expect((await call(open.url, "/v1/files", { headers: bearer(made.body.key) })).status).toBe(200);

    expect((await admin(keyed, `/v1/admin/keys/${made.body.id}`, { method: "DELETE" })).status).toBe(200);
    expect((await call(open.url, "/v1/files")).status).toBe(200);
  });
});

describe("hostile keys parameters", () => {
  const nul = "must not contain U+0000 or an unpaired surrogate";
  const badTenant = "a tenant is 1 to 64 letters, digits, '-' or '_', starting with a letter or digit";
  test.each([
    [{ tenant: "team a", name: "x" }, "tenant", `Invalid value for 'tenant': ${badTenant}.`, "invalid_value"],
    [{ tenant: "a\u0000", name: "x" }, "tenant", `Invalid value for 'tenant': ${badTenant}.`, "invalid_value"],
    [{ tenant: "x".repeat(65), name: "x" }, "tenant", `Invalid value for 'tenant': ${badTenant}.`, "invalid_value"],
    [{ name: "x" }, "tenant", "Missing required parameter: 'tenant'.", "missing_required_parameter"],
    [{ tenant: "team-a", name: "x\u0000y" }, "name", `Invalid value for 'name': ${nul}.`, "invalid_value"],
    [{ tenant: "team-a", name: "\ud800" }, "name", `Invalid value for 'name': ${nul}.`, "invalid_value"],
    [{ tenant: "team-a", name: "" }, "name", "Invalid value for 'name': Too small: expected string to have >=1 characters.", "invalid_value"],
    [{ tenant: "team-a", name: "n".repeat(129) }, "name", "Invalid value for 'name': Too big: expected string to have <=128 characters.", "invalid_value"],
    [{ tenant: "team-a", name: 7 }, "name", "Invalid value for 'name': Invalid input: expected string, received number.", "invalid_type"],
    [{ tenant: "team-a", name: "x", key: "sk-chosen" }, null, 'Invalid request body: Unrecognized key: "key".', "invalid_value"],
  ])("create with %j is a 400 naming %s", async (body, param, message, code) => {
    const r = await admin(a, "/v1/admin/keys", { body });
    expect([r.status, r.body.error]).toEqual([400, { message, type: "invalid_request_error", param, code }]);
  });

  test("a body that is not JSON, and hostile list queries, are 400s; nothing was stored", async () => {
    const r = await admin(a, "/v1/admin/keys", { body: "{tenant" });
    expect([r.status, r.body.error.code]).toEqual([400, "invalid_json"]);
    for (const [query, param] of [["tenant=%00", "tenant"], ["after=key_%00", "after"], ["limit=0", "limit"], ["limit=1001", "limit"]]) {
      const q = await admin(a, `/v1/admin/keys?${query}`);
      expect([query, q.status, q.body.error.param]).toEqual([query, 400, param]);
    }
    const stored = await ctx.db.selectFrom("api_keys").select("tenant").where("tenant", "in", ["team a", "x".repeat(65)]).execute();
    expect(stored).toEqual([]);
  });
});

import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { findTenantSettings } from "@barge/api";
import { call } from "../support/api-harness.js";
import { createTestContext, type TestContext } from "../support/context.js";
import { serveEventsApp } from "../support/s3-events.js";

// A tenant's weight and limits as the admin reads and sets them, on real Postgres and HTTP.
// The environment gives every tenant's defaults; the admin's overrides sit on top.

const ADMIN = "admin-key-0123456789abcdef";
let ctx: TestContext;
let api: { url: string; close(): Promise<void> };

beforeAll(async () => {
  ctx = await createTestContext({
    BARGE_ADMIN_KEY: ADMIN,
    // The suite support raises the two rate defaults for everyone else; these are the shipped values.
    TENANT_BATCH_CREATES_PER_MINUTE: "10",
    TENANT_FILE_UPLOADS_PER_MINUTE: "20",
    TENANT_BATCHES_PER_DAY: "500",
    TENANT_MAX_PRIORITY: "100",
  });
  api = await serveEventsApp(ctx, {});
});
afterAll(async () => {
  await api?.close();
  await ctx?.close();
});

function admin(path: string, init: { method?: string; body?: unknown } = {}) {
  const json: Record<string, string> = init.body === undefined ? {} : { "content-type": "application/json" };
  return call(api.url, path, {
    method: init.method ?? "GET",
    headers: { authorization: `Bearer ${ADMIN}`, ...json },
    ...(init.body === undefined ? {} : { body: typeof init.body === "string" ? init.body : JSON.stringify(init.body) }),
  });
}
const put = (tenant: string, body: unknown) => admin(`/v1/admin/tenants/${tenant}`, { method: "PUT", body });

const DEFAULTS = {
  batch_creates_per_minute: 10,
  file_uploads_per_minute: 20,
  batches_per_day: 500,
  max_active_batches: null,
  max_queued_requests: null,
  max_priority: 100,
};

describe("GET and PUT /v1/admin/tenants/{tenant}", () => {
  test("a tenant never set answers its defaults, 200, and reading it stores nothing", async () => {
    const r = await admin("/v1/admin/tenants/fresh");
    expect([r.status, r.body]).toEqual([200, { object: "tenant", tenant: "fresh", weight: 1, limits: DEFAULTS, overrides: {}, keys: 0, updated_at: null }]);
    expect(await ctx.db.selectFrom("tenants").select("tenant").execute()).toEqual([]);
    expect(await findTenantSettings(ctx.db, "fresh")).toEqual({ weight: 1, overrides: {} });
  });

  test("PUT merges into the stored overrides: null is unlimited, 'default' drops one, an absent weight is kept", async () => {
    const first = await put("team-a", { weight: 3, limits: { batch_creates_per_minute: 60, max_queued_requests: 1_000_000 } });
    expect([first.status, first.body]).toEqual([
      200,
      {
        object: "tenant",
        tenant: "team-a",
        weight: 3,
        limits: { ...DEFAULTS, batch_creates_per_minute: 60, max_queued_requests: 1_000_000 },
        overrides: { batch_creates_per_minute: 60, max_queued_requests: 1_000_000 },
        keys: 0,
        updated_at: expect.any(Number),
      },
    ]);
    const second = await put("team-a", { limits: { batches_per_day: null, max_priority: -5, batch_creates_per_minute: "default" } });
    expect(second.body).toMatchObject({
      weight: 3,
      limits: { ...DEFAULTS, batches_per_day: null, max_priority: -5, max_queued_requests: 1_000_000 },
      overrides: { batches_per_day: null, max_priority: -5, max_queued_requests: 1_000_000 },
    });
    expect(await findTenantSettings(ctx.db, "team-a")).toEqual({ weight: 3, overrides: { batches_per_day: null, max_priority: -5, max_queued_requests: 1_000_000 } });
    const weighed = await put("team-a", { weight: 0.5 });
    expect([weighed.body.weight, weighed.body.overrides]).toEqual([0.5, { batches_per_day: null, max_priority: -5, max_queued_requests: 1_000_000 }]);
    expect((await admin("/v1/admin/tenants/team-a")).body).toEqual(weighed.body);
    // Another tenant is untouched.
    expect((await admin("/v1/admin/tenants/team-b")).body.limits).toEqual(DEFAULTS);
  });

  test("concurrent PUTs of different limits all hold: each merge is one statement", async () => {
    const sets: [string, number][] = [
      ["batch_creates_per_minute", 7],
      ["file_uploads_per_minute", 8],
      ["batches_per_day", 9],
      ["max_active_batches", 10],
      ["max_queued_requests", 11],
      ["max_priority", 12],
    ];
    const answers = await Promise.all(sets.map(([name, value]) => put("racing", { limits: { [name]: value } })));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect((await admin("/v1/admin/tenants/racing")).body.overrides).toEqual(Object.fromEntries(sets));
  });

  test("keys counts the tenant's unrevoked keys; GET /v1/admin/tenants lists tenants with settings or a key, by name", async () => {
    const made = await Promise.all(["one", "two"].map(async (name) => (await admin("/v1/admin/keys", { method: "POST", body: { tenant: "keyed", name } })).body));
    expect((await admin("/v1/admin/tenants/keyed")).body.keys).toBe(2);
    await admin(`/v1/admin/keys/${made[0].id}`, { method: "DELETE" });
    expect((await admin("/v1/admin/tenants/keyed")).body).toMatchObject({ tenant: "keyed", keys: 1, weight: 1, overrides: {}, updated_at: null });
    const onlyRevoked = (await admin("/v1/admin/keys", { method: "POST", body: { tenant: "gone", name: "x" } })).body;
    await admin(`/v1/admin/keys/${onlyRevoked.id}`, { method: "DELETE" });

    const list = await admin("/v1/admin/tenants");
    expect(list.status).toBe(200);
    expect(list.body.object).toBe("list");
    // `fresh` and `team-b` were only read, never set: they are not listed.
    expect(list.body.data.map((t: { tenant: string; keys: number; weight: number }) => [t.tenant, t.keys, t.weight])).toEqual([
      ["gone", 0, 1],
      ["keyed", 1, 1],
      ["racing", 0, 1],
      ["team-a", 0, 0.5],
    ]);
    expect(list.body.data[3].limits).toEqual((await admin("/v1/admin/tenants/team-a")).body.limits);
  });
});

describe("hostile tenants parameters", () => {
  const badTenant = "a tenant is 1 to 64 letters, digits, '-' or '_', starting with a letter or digit";
  const oneLimit = "must be a whole number, null for unlimited, or 'default'";
  test.each([
    [{ limits: { batch_creates_per_minte: 5 } }, "limits", `Invalid value for 'limits': Unrecognized key: "batch_creates_per_minte".`, "invalid_value"],
    [{ weight: 0 }, "weight", "Invalid value for 'weight': Too small: expected number to be >0.", "invalid_value"],
    [{ weight: -1 }, "weight", "Invalid value for 'weight': Too small: expected number to be >0.", "invalid_value"],
    [{ weight: 1001 }, "weight", "Invalid value for 'weight': Too big: expected number to be <=1000.", "invalid_value"],
    [{ weight: "2" }, "weight", "Invalid value for 'weight': Invalid input: expected number, received string.", "invalid_type"],
    [{ limits: { batch_creates_per_minute: 0 } }, "limits.batch_creates_per_minute", "Invalid value for 'limits.batch_creates_per_minute': Too small: expected number to be >=1.", "invalid_value"],
    [{ limits: { max_priority: 1001 } }, "limits.max_priority", "Invalid value for 'limits.max_priority': Too big: expected number to be <=1000.", "invalid_value"],
    [{ limits: { max_priority: 1.5 } }, "limits.max_priority", `Invalid value for 'limits.max_priority': ${oneLimit}.`, "invalid_value"],
    [{ limits: { batches_per_day: "unlimited" } }, "limits.batches_per_day", `Invalid value for 'limits.batches_per_day': ${oneLimit}.`, "invalid_value"],
    [{ limits: { "\u0000": 1 } }, "limits", `Invalid value for 'limits': Unrecognized key: "\u0000".`, "invalid_value"],
    [{ limits: [1] }, "limits", "Invalid value for 'limits': Invalid input: expected object, received array.", "invalid_type"],
    [{ weight: 2, share: 1 }, null, 'Invalid request body: Unrecognized key: "share".', "invalid_value"],
  ])("PUT %j is a 400 naming %s, and stores nothing", async (body, param, message, code) => {
    const r = await put("hostile", body);
    expect([r.status, r.body.error]).toEqual([400, { message, type: "invalid_request_error", param, code }]);
    expect(await ctx.db.selectFrom("tenants").select("tenant").where("tenant", "=", "hostile").execute()).toEqual([]);
  });

  test.each(["team%20a", "%00", "a%00b", "-lead", "x".repeat(65), "%F0%9F%98%80"])("the tenant %j in the path is a 400 on GET and PUT", async (tenant) => {
    for (const r of [await admin(`/v1/admin/tenants/${tenant}`), await put(tenant, { weight: 2 })]) {
      expect([r.status, r.body.error]).toEqual([400, { message: `Invalid value for 'tenant': ${badTenant}.`, type: "invalid_request_error", param: "tenant", code: "invalid_value" }]);
    }
  });

  test("a body that is not JSON is a 400 invalid_json", async () => {
    const r = await put("hostile", "{weight");
    expect([r.status, r.body.error.code]).toEqual([400, "invalid_json"]);
  });
});

describe("every documented admin route with U+0000 in each string parameter", () => {
  test("answers 2xx or 4xx in OpenAI's error shape with the admin key, never 5xx", async () => {
    const doc = (await call(api.url, "/openapi.json")).body as { paths: Record<string, Record<string, any>> };
    const real: Record<string, string> = { key_id: "key_000000000000000000000000", tenant: "walked" };
    // A valid JSON body per operation, each of whose fields is then replaced in turn.
    const jsonBase: Record<string, Record<string, unknown>> = {
      "POST /v1/admin/keys": { tenant: "walked", name: "k" },
      "PUT /v1/admin/tenants/{tenant}": { weight: 2, limits: { max_priority: 10 } },
    };
    const sent: string[] = [];
    const bad: string[] = [];
    const send = async (label: string, path: string, init: { method: string; body?: unknown }) => {
      const r = await admin(path, init);
      sent.push(label);
      if (r.status >= 500 || (r.status >= 400 && r.body?.error?.type === undefined)) bad.push(`${label}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
    };
    for (const [template, ops] of Object.entries(doc.paths).filter(([p]) => p.startsWith("/v1/admin/"))) {
      for (const [method, op] of Object.entries(ops)) {
        const name = `${method.toUpperCase()} ${template}`;
        const params = (op.parameters ?? []) as { name: string; in: string }[];
        const pathWith = (nul?: string) => params.filter((p) => p.in === "path").reduce((p, { name: n }) => p.replace(`{${n}}`, n === nul ? "a%00b" : real[n]!), template);
        const base = jsonBase[name];
        const body = base === undefined ? {} : { body: base };
        for (const { name: n } of params.filter((p) => p.in === "path")) await send(`${name} path ${n}`, pathWith(n), { method, ...body });
        for (const { name: n } of params.filter((p) => p.in === "query")) await send(`${name} query ${n}`, `${pathWith()}?${n}=%00`, { method, ...body });
        const json = op.requestBody?.content?.["application/json"]?.schema as { properties: Record<string, unknown> } | undefined;
        if (!json) continue;
        expect(base, `a base body for ${name}`).toBeDefined();
        for (const field of Object.keys(json.properties)) {
          const was = base![field];
          for (const h of ["\u0000", "x\u0000y", "\ud800"]) {
            const values = was !== null && typeof was === "object" ? [{ [h]: 1 }, { max_priority: h }] : [h];
            for (const v of values) await send(`${name} json ${field}=${JSON.stringify(v)}`, pathWith(), { method, body: { ...base, [field]: v } });
          }
        }
      }
    }
    expect(bad).toEqual([]);
    expect(sent.filter((s) => s.includes(" path "))).toHaveLength(3);
    expect(sent.length).toBeGreaterThanOrEqual(3 + 2 + 3 * 2 + 3 * 3);
  });
});

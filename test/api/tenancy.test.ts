import { toFile } from "openai/uploads";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { call, chatLine, jsonl, sdkClient, waitForBatch } from "../support/api-harness.js";
import { createTestContext, type TestContext } from "../support/context.js";
import { waitFor } from "../support/seed.js";
import { startServices, type Services } from "../support/services.js";
import { bearer, storeTenantKey } from "../support/tenant-keys.js";
import { SECRET, startReceiver, verified } from "../support/webhook-receiver.js";

// Tenancy is a security boundary: another tenant's object answers 404 on every route, never a
// 403 or its data, and lists never show it. Three tenants, each with a key stored in `api_keys`,
// share one API, Postgres and bucket. Each runs a batch through the official openai SDK and
// leaves a pending upload and a pending presigned file; every other tenant is then tried on every
// route of the OpenAPI document with those ids, so a route added later is tried too. Every
// `/v1/admin/*` route the document lists answers 403 to a tenant key, and every tenant route
// 403 to the admin key. Webhooks: a batch's own endpoint hears only of that batch; the
// operator's WEBHOOK_URLS hear of every tenant's.

const TENANTS = ["alpha", "bravo", "charlie"] as const;
type Tenant = (typeof TENANTS)[number];
const ADMIN_KEY = "admin-key-0123456789";

let ctx: TestContext;
let services: Services;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
const keys = {} as Record<Tenant, string>;
const ids = {} as Record<Tenant, Record<string, string>>;
type Doc = { paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>> };
let doc: Doc;

beforeAll(async () => {
  receiver = await startReceiver();
  ctx = await createTestContext({
    BARGE_ADMIN_KEY: ADMIN_KEY,
    CHUNK_SIZE: "2",
    API_POLL_MS: "50",
    AGENT_POLL_MS: "50",
    WEBHOOK_URLS: `${receiver.url}/operator`,
    WEBHOOK_SECRET: SECRET,
    // The receiver is on loopback, which a batch's own webhook_url may only reach when allowed.
    WEBHOOK_ALLOW_PRIVATE: "true",
  });
  for (const t of TENANTS) keys[t] = await storeTenantKey(ctx.db, t);
  services = await startServices(ctx);

  for (const t of TENANTS) {
    // One run through the official SDK per tenant: upload, create, wait, read the output.
    const client = sdkClient(services.apiUrl, keys[t]);
    const lines = [0, 1, 2].map((i) => chatLine(`${t}-${i}`, { model: "barge-sim-1" }));
    const file = await client.files.create({ file: await toFile(Buffer.from(jsonl(lines)), `${t}-input.jsonl`), purpose: "batch" });
    // Barge's own field, past the SDK's types: the SDK sends the body as given.
    const own: Record<string, unknown> = { webhook_url: `${receiver.url}/${t}` };
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", ...own });
    const done = await waitForBatch(client, batch.id, ["completed"]);
    const output = await (await client.files.content(done.output_file_id!)).text();
    expect(output.trim().split("\n").map((l) => JSON.parse(l).custom_id)).toEqual([`${t}-0`, `${t}-1`, `${t}-2`]);
    const post = (path: string, body: unknown) => call(services.apiUrl, path, { method: "POST", headers: { ...bearer(keys[t]), "content-type": "application/json" }, body: JSON.stringify(body) });
    const upload = await post("/v1/uploads", { filename: `${t}-u.jsonl`, purpose: "batch", bytes: 100, mime_type: "application/jsonl" });
    const presigned = await post("/v1/files/presign", { filename: `${t}-p.jsonl`, purpose: "batch", bytes: 10 });
    expect([upload.status, presigned.status]).toEqual([200, 200]);
    ids[t] = { file_id: file.id, batch_id: batch.id, upload_id: upload.body.id, output_file_id: done.output_file_id!, presigned_file_id: presigned.body.id };
  }
  doc = (await call(services.apiUrl, "/openapi.json")).body as Doc;
}, 180_000);

afterAll(async () => {
  await services?.stop();
  await ctx?.close();
  await receiver?.close();
});

/** A valid request for each operation, so only ownership decides the answer. */
function requestFor(name: string, key: string): RequestInit {
  const method = name.split(" ")[0]!;
  const headers = bearer(key);
  if (name === "POST /v1/uploads/{upload_id}/parts") {
    const form = new FormData();
    form.set("data", new Blob(["{}\n"]), "part");
    return { method, headers, body: form };
  }
  const json: Record<string, unknown> = { "POST /v1/uploads/{upload_id}/complete": { part_ids: ["part_x"] } };
  const body = json[name] ?? (method === "GET" || method === "DELETE" ? undefined : {});
  return body === undefined ? { method, headers } : { method, headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify(body) };
}

/** Every documented operation as `METHOD /path`, with its path parameters. */
const operations = () =>
  Object.entries(doc.paths).flatMap(([template, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ template, name: `${method.toUpperCase()} ${template}`, params: (op.parameters ?? []).filter((p) => p.in === "path").map((p) => p.name) })),
  );
const isAdmin = (template: string) => template.startsWith("/v1/admin/");

describe("another tenant's objects", () => {
  test("answer 404 on every documented route with a path id, for each of their ids, to each other tenant", async () => {
    // The ids each path parameter is tried with: a file id is their input, their output, and a pending presign.
    const tried = (owner: Tenant): Record<string, string[]> => ({
      file_id: [ids[owner].file_id!, ids[owner].output_file_id!, ids[owner].presigned_file_id!],
      batch_id: [ids[owner].batch_id!],
      upload_id: [ids[owner].upload_id!],
    });
    const walked = new Set<string>();
    const leaks: string[] = [];
    for (const viewer of TENANTS) {
      for (const owner of TENANTS.filter((t) => t !== viewer)) {
        // Nothing of the owner's may show: filenames, custom_ids, ids, presigned URLs.
        const theirs = new RegExp(`${owner}-|X-Amz-|${Object.values(ids[owner]).join("|")}`);
        for (const op of operations().filter((o) => o.params.length > 0 && !isAdmin(o.template))) {
          expect(op.params.length, op.name).toBe(1);
          const values = tried(owner)[op.params[0]!];
          expect(values, `ids for ${op.params[0]}`).toBeDefined();
          for (const id of values!) {
            const res = await fetch(services.apiUrl + op.template.replace(`{${op.params[0]}}`, id), requestFor(op.name, keys[viewer]));
            const text = await res.text();
            walked.add(op.name);
            // A 404 in OpenAI's error shape, and nothing of theirs in it but the id asked for.
            const shaped = res.headers.get("content-type")?.includes("application/json") && (JSON.parse(text) as { error?: unknown }).error !== undefined;
            if (res.status !== 404 || !shaped || theirs.test(text.replaceAll(id, ""))) leaks.push(`${viewer} on ${op.name} with ${owner}'s ${id}: ${res.status} ${text.slice(0, 160)}`);
          }
        }
      }
    }
    expect(leaks).toEqual([]);
    // Every tenant operation with a path id was tried (adjust when a route with a path id is added).
    expect(walked.size).toBe(17);
    expect([...walked]).toEqual(expect.arrayContaining(["POST /v1/files/{file_id}/complete", "GET /v1/files/{file_id}/content", "GET /v1/batches/{batch_id}/results"]));
  });

  test("never show in a list, and the same routes still serve their owner", async () => {
    for (const t of TENANTS) {
      const own: Record<string, string[]> = {
        "/v1/files": [ids[t].file_id!, ids[t].output_file_id!].sort(),
        "/v1/files?purpose=batch": [ids[t].file_id!],
        "/v1/batches": [ids[t].batch_id!],
        "/v1/batches?status=completed,validating": [ids[t].batch_id!],
      };
      for (const path of Object.keys(own)) {
        const r = await call(services.apiUrl, path, { headers: bearer(keys[t]) });
        const listed = r.body.data.map((o: { id: string }) => o.id).sort();
        expect([t, path, r.status, listed]).toEqual([t, path, 200, own[path]]);
      }
      const batch = await call(services.apiUrl, `/v1/batches/${ids[t].batch_id}`, { headers: bearer(keys[t]) });
      // The owner, and only the owner, gets the presigned results URL.
      expect([batch.status, batch.body.status, typeof batch.body.results_url]).toEqual([200, "completed", "string"]);
    }
  });

  test("every documented /v1/admin/* route answers 403 to each tenant key; every tenant route 403 to the admin key", async () => {
    const admin = [...operations().filter((o) => isAdmin(o.template)), { template: "/v1/admin/undocumented", name: "GET /v1/admin/undocumented", params: [] }];
    for (const op of admin) {
      const path = op.params.reduce((p, name) => p.replace(`{${name}}`, name === "tenant" ? "alpha" : "key_x"), op.template);
      for (const t of TENANTS) {
        const r = await call(services.apiUrl, path, requestFor(op.name, keys[t]));
        expect([op.name, t, r.status, r.body?.error?.code]).toEqual([op.name, t, 403, "admin_key_required"]);
      }
    }
    const tenantOps = operations().filter((o) => o.template.startsWith("/v1/") && !isAdmin(o.template) && o.template !== "/v1/s3-events");
    expect(tenantOps.length).toBeGreaterThan(17);
    for (const op of tenantOps) {
      const path = op.params.reduce((p, name) => p.replace(`{${name}}`, ids.alpha[name] ?? name), op.template);
      const r = await call(services.apiUrl, path, requestFor(op.name, ADMIN_KEY));
      expect([op.name, r.status, r.body?.error?.code]).toEqual([op.name, 403, "tenant_key_required"]);
    }
  });

  test("a batch's own webhook endpoint hears only of that batch; the operator's WEBHOOK_URLS hear of every tenant's", async () => {
    await waitFor("a delivery per tenant and three to the operator", async () => receiver.received.length >= 6);
    const heard: Record<string, string[]> = {};
    for (const r of receiver.received) {
      const event = await verified(r);
      expect(event.type).toBe("batch.completed");
      (heard[r.path] ??= []).push((event.data as { id: string }).id);
    }
    expect(Object.fromEntries(Object.entries(heard).map(([path, batches]) => [path, batches.sort()]))).toEqual({
      "/alpha": [ids.alpha.batch_id],
      "/bravo": [ids.bravo.batch_id],
      "/charlie": [ids.charlie.batch_id],
      "/operator": TENANTS.map((t) => ids[t].batch_id).sort(),
    });
  });

  test("ids in a body: another tenant's file as input_file_id is the unknown-id 404; another tenant's part in part_ids the unknown-part 400", async () => {
    const as = (key: string, path: string, body: unknown) =>
      call(services.apiUrl, path, { method: "POST", headers: { ...bearer(key), "content-type": "application/json" }, body: JSON.stringify(body) });
    for (const file of [ids.bravo.file_id!, ids.bravo.output_file_id!, ids.bravo.presigned_file_id!]) {
      const r = await as(keys.alpha, "/v1/batches", { input_file_id: file, endpoint: "/v1/chat/completions", completion_window: "24h" });
      expect([r.status, r.body.error]).toEqual([404, { message: `No file found with id '${file}'.`, type: "invalid_request_error", param: "input_file_id", code: "not_found" }]);
    }
    const form = new FormData();
    form.set("data", new Blob(["{}\n"]), "part");
    const part = await call(services.apiUrl, `/v1/uploads/${ids.bravo.upload_id}/parts`, { method: "POST", headers: bearer(keys.bravo), body: form });
    const upload = await as(keys.alpha, "/v1/uploads", { filename: "alpha-joined.jsonl", purpose: "batch", bytes: 3, mime_type: "application/jsonl" });
    expect([part.status, upload.status]).toEqual([200, 200]);
    for (const partId of [part.body.id, "part_made_up"]) {
      const r = await as(keys.alpha, `/v1/uploads/${upload.body.id}/complete`, { part_ids: [partId] });
      expect([r.status, r.body.error]).toEqual([400, { message: `Upload '${upload.body.id}' has no part '${partId}'.`, type: "invalid_request_error", param: "part_ids", code: "invalid_value" }]);
    }
    expect((await call(services.apiUrl, "/v1/batches", { headers: bearer(keys.alpha) })).body.data.map((b: { id: string }) => b.id)).toEqual([ids.alpha.batch_id]);
  });

  test("a presigned upload its owner has PUT is completed by no other tenant; then by its owner", async () => {
    const post = (key: string, path: string, body?: unknown) =>
      call(services.apiUrl, path, { method: "POST", headers: { ...bearer(key), "content-type": "application/json" }, body: JSON.stringify(body ?? {}) });
    const text = jsonl([chatLine("alpha-p", { model: "barge-sim-1" })]);
    const presigned = await post(keys.alpha, "/v1/files/presign", { filename: "alpha-late.jsonl", purpose: "batch", bytes: Buffer.byteLength(text) });
    const put = await fetch(presigned.body.upload_url, { method: "PUT", body: text });
    expect([presigned.status, put.status]).toEqual([200, 200]);
    for (const t of ["bravo", "charlie"] as const) {
      const r = await post(keys[t], `/v1/files/${presigned.body.id}/complete`);
      expect([t, r.status, r.body.error.code, JSON.stringify(r.body)]).toEqual([t, 404, "not_found", expect.not.stringContaining("alpha-late")]);
    }
    const own = await post(keys.alpha, `/v1/files/${presigned.body.id}/complete`);
    expect([own.status, own.body.status, own.body.filename]).toEqual([200, "processed", "alpha-late.jsonl"]);
  });
});

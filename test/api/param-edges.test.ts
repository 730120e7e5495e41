import { Hono } from "hono";
import { sql } from "kysely";
import { errorHandler } from "@barge/api/testing";
import { toFile } from "openai/uploads";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { call, chatLine, jsonl, postJson, startBareApi, type TestApi } from "../support/api-harness.js";
import { testLog } from "../support/context.js";
import { listKeys, readObject, seedBatch } from "../support/seed.js";

const NUL_TEXT = "must not contain U+0000 or an unpaired surrogate";

describe("hostile text in API parameters", () => {
  let t: TestApi;
  let fileId: string;
  beforeAll(async () => {
    t = await startBareApi();
    fileId = (await t.client.files.create({ file: await toFile(Buffer.from(jsonl([chatLine("a")])), "in.jsonl"), purpose: "batch" })).id;
  });
  afterAll(() => t?.close());

  test("a NUL or a malformed id in a path is the same 404 not_found as an unknown id", async () => {
    const cases: [string, string, string, string][] = [
      ["GET", "/v1/batches/batch_%00", "No batch found with id 'batch_\u0000'.", "batch_id"],
      ["GET", "/v1/batches/nope", "No batch found with id 'nope'.", "batch_id"],
      ["GET", "/v1/batches/batch_000000000000000000000000", "No batch found with id 'batch_000000000000000000000000'.", "batch_id"],
      ["POST", "/v1/batches/a%00b/cancel", "No batch found with id 'a\u0000b'.", "batch_id"],
      ["GET", "/v1/batches/%00/errors", "No batch found with id '\u0000'.", "batch_id"],
      ["POST", "/v1/batches/%00/retry", "No batch found with id '\u0000'.", "batch_id"],
      ["GET", "/v1/files/file-%00", "No file found with id 'file-\u0000'.", "file_id"],
      ["GET", `/v1/files/${fileId.toUpperCase()}`, `No file found with id '${fileId.toUpperCase()}'.`, "file_id"],
      ["GET", "/v1/files/%00/content", "No file content found with id '\u0000'.", "file_id"],
      ["DELETE", "/v1/files/%00", "No file found with id '\u0000'.", "file_id"],
    ];
    for (const [method, path, message, param] of cases) {
      const r = await call(t.url, path, { method });
      expect([path, r.status, r.body]).toEqual([path, 404, { error: { message, type: "invalid_request_error", param, code: "not_found" } }]);
    }
  });

  test("a NUL in a query parameter is a 400 naming the parameter", async () => {
    const batch = await t.client.batches.create({ input_file_id: fileId, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const cases: [string, string][] = [
      ["/v1/batches?after=batch_%00", "after"],
      ["/v1/files?after=%00", "after"],
      ["/v1/files?purpose=batch%00", "purpose"],
      [`/v1/batches/${batch.id}/errors?after=%00`, "after"],
    ];
    for (const [path, param] of cases) {
      const r = await call(t.url, path);
      expect([path, r.status, r.body.error]).toEqual([
        path,
        400,
        { message: `Invalid value for '${param}': ${NUL_TEXT}.`, type: "invalid_request_error", param, code: "invalid_value" },
      ]);
    }
    const limit = await call(t.url, "/v1/batches?limit=%00");
    expect([limit.status, limit.body.error.param, limit.body.error.code]).toEqual([400, "limit", "invalid_type"]);
  });

  test("a NUL or a lone surrogate in a create body is a 400 for text params, the unknown-id 404 for input_file_id", async () => {
    const ok = { input_file_id: fileId, endpoint: "/v1/chat/completions", completion_window: "24h" };
    // Raw JSON text, so the escapes reach the server as written.
    const raw = (over: string) => `{"input_file_id":"${fileId}","endpoint":"/v1/chat/completions","completion_window":"24h",${over}}`;
    const bad: [string, string, string][] = [
      [raw(`"metadata":{"k\\u0000":"v"}`), "metadata", "keys and values must not contain U+0000 or an unpaired surrogate"],
      [raw(`"metadata":{"k":"\\ud800"}`), "metadata", "keys and values must not contain U+0000 or an unpaired surrogate"],
      [raw(`"metadata":{"k":"\\udc00x"}`), "metadata", "keys and values must not contain U+0000 or an unpaired surrogate"],
      [raw(`"webhook_url":"https://example.com/\\u0000"`), "webhook_url", NUL_TEXT],
      [JSON.stringify({ ...ok, completion_window: "24h\u0000" }), "completion_window", "the only supported value is '24h'"],
    ];
    for (const [body, param, message] of bad) {
      const r = await postJson(t.url, "/v1/batches", body);
      expect([param, r.status, r.body.error]).toEqual([param, 400, { message: `Invalid value for '${param}': ${message}.`, type: "invalid_request_error", param, code: "invalid_value" }]);
    }
    const endpoint = await postJson(t.url, "/v1/batches", { ...ok, endpoint: "/v1/chat/completions\u0000" });
    expect([endpoint.status, endpoint.body.error.param, endpoint.body.error.code]).toEqual([400, "endpoint", "invalid_value"]);

    // A paired surrogate (an emoji) is text like any other.
    const emoji = await postJson(t.url, "/v1/batches", raw(`"metadata":{"k":"\\ud83d\\ude00"}`));
    expect([emoji.status, emoji.body.metadata]).toEqual([200, { k: "\u{1F600}" }]);

    for (const id of ["file-\u0000", `${fileId}\u0000`, "file-\ud800", "nope"]) {
      const r = await postJson(t.url, "/v1/batches", { ...ok, input_file_id: id });
      expect([r.status, r.body.error]).toEqual([404, { message: `No file found with id '${id}'.`, type: "invalid_request_error", param: "input_file_id", code: "not_found" }]);
    }
  });

  test("a JSON body that is not UTF-8 is a 400 invalid_utf8", async () => {
    const body = Buffer.concat([Buffer.from(`{"input_file_id":"${fileId}","endpoint":"/v1/chat/completions","completion_window":"24h","metadata":{"k":"`), Buffer.from([0xff, 0xfe]), Buffer.from(`"}}`)]);
    const r = await call(t.url, "/v1/batches", { method: "POST", headers: { "content-type": "application/json" }, body });
    expect([r.status, r.body.error]).toEqual([400, { message: "The request body is not valid UTF-8.", type: "invalid_request_error", param: null, code: "invalid_utf8" }]);
  });

  test("a NUL in a one-shot form field is a 400 naming the field", async () => {
    const form = new FormData();
    form.set("model", "m\u0000");
    form.set("file", new Blob([jsonl([chatLine("o")])]), "oneshot.jsonl");
    const r = await call(t.url, "/v1/batches", { method: "POST", body: form });
    expect([r.status, r.body.error]).toEqual([400, { message: `Invalid value for 'model': ${NUL_TEXT}.`, type: "invalid_request_error", param: "model", code: "invalid_value" }]);
  });

  test("a value the database refuses as data (SQLSTATE class 22) is a 400 invalid_value, not a 500", async () => {
    // Every route now refuses a NUL before Postgres sees it, so the handler gets Postgres's own
    // 22P05 ("unsupported Unicode escape sequence") from a real query, as a route missing a check would.
    const app = new Hono();
    app.onError(errorHandler(testLog));
    app.get("/x", async (c) => c.json(await sql`select ${"a\u0000"}::text as v`.execute(t.ctx.db)));
    const r = await app.request("/x");
    expect([r.status, ((await r.json()) as { error: unknown }).error]).toEqual([
      400,
      { message: "The request holds a value the database cannot store (such as a U+0000 character).", type: "invalid_request_error", param: null, code: "invalid_value" },
    ]);
  });
});

describe("POST /v1/batches/{id}/retry refused", () => {
  /** A finished batch with one failed request (its second), as the agent leaves it. */
  async function finishedWithOneFailure(t: TestApi) {
    const seeded = await seedBatch(t.ctx, [chatLine("a"), chatLine("b")]);
    await t.ctx.db.updateTable("batches").set({ status: "completed" }).where("id", "=", seeded.batchId).execute();
    await t.ctx.db.updateTable("chunks").set({ status: "done", committed: 2, completed: 1, failed: 1 }).where("batch_id", "=", seeded.batchId).execute();
    await t.ctx.db
      .insertInto("request_errors")
      .values({ batch_id: seeded.batchId, request_index: 1, chunk_idx: 0, custom_id: "b", line: 2, code: "engine_error", message: "boom", status_code: 500, attempts: 1 })
      .execute();
    return seeded;
  }

  test("at the active-batch limit: 429 and no input object written; once a slot frees, the retry is made", async () => {
    const t = await startBareApi({ MAX_ACTIVE_BATCHES: "1" });
    try {
      const seeded = await finishedWithOneFailure(t);
      const filler = await t.client.batches.create({ input_file_id: seeded.fileId, endpoint: "/v1/chat/completions", completion_window: "24h" });
      const before = await listKeys(t.ctx, "inputs/");

      for (let i = 0; i < 3; i++) {
        const r = await call(t.url, `/v1/batches/${seeded.batchId}/retry`, { method: "POST" });
        expect([r.status, r.headers.get("retry-after"), r.body.error.code]).toEqual([429, "60", "batch_limit_exceeded"]);
      }
      expect(await listKeys(t.ctx, "inputs/")).toEqual(before);
      expect(await t.ctx.db.selectFrom("files").select("id").execute()).toEqual([{ id: seeded.fileId }]);

      await t.client.batches.cancel(filler.id);
      const retry = await call(t.url, `/v1/batches/${seeded.batchId}/retry`, { method: "POST" });
      expect([retry.status, retry.body.retry_of]).toEqual([200, seeded.batchId]);
      const file = await t.ctx.db.selectFrom("files").select("s3_key").where("id", "=", retry.body.input_file_id).executeTakeFirstOrThrow();
      expect((await listKeys(t.ctx, "inputs/")).sort()).toEqual([...before, file.s3_key].sort());
      expect(await readObject(t.ctx, file.s3_key)).toBe(`${JSON.stringify(chatLine("b"))}\n`);
    } finally {
      await t.close();
    }
  });

  test("inside the creating transaction: the input object already written is deleted", async () => {
    const t = await startBareApi();
    try {
      const seeded = await finishedWithOneFailure(t);
      // Postgres itself refuses the retry's file row once the object is in S3.
      await sql`CREATE FUNCTION refuse_retry_file() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = '22023'; END $$`.execute(t.ctx.db);
      await sql`CREATE TRIGGER refuse_retry_file BEFORE INSERT ON files FOR EACH ROW WHEN (NEW.filename LIKE '%_retry.jsonl') EXECUTE FUNCTION refuse_retry_file()`.execute(t.ctx.db);
      const before = await listKeys(t.ctx, "inputs/");

      const r = await call(t.url, `/v1/batches/${seeded.batchId}/retry`, { method: "POST" });
      expect([r.status, r.body.error.code]).toEqual([400, "invalid_value"]);
      expect(await listKeys(t.ctx, "inputs/")).toEqual(before);
      expect(await t.ctx.db.selectFrom("batches").select("id").execute()).toEqual([{ id: seeded.batchId }]);
    } finally {
      await t.close();
    }
  });
});

describe("the Authorization scheme", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startBareApi({ BARGE_API_KEY: "sekret" });
  });
  afterAll(() => t?.close());

  const withAuth = (authorization: string) => call(t.url, "/v1/batches", { headers: { authorization } });

  test.each(["Bearer sekret", "bearer sekret", "BEARER sekret", "bEaReR sekret", "Bearer     sekret", "Bearer \t sekret  "])("%j is accepted", async (header) => {
    const r = await withAuth(header);
    expect([r.status, r.body.object]).toEqual([200, "list"]);
  });

  test.each([
    ["bearer wrong", "Incorrect API key provided."],
    ["Bearer", "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."],
    ["Bearersekret", "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."],
    ["Basic sekret", "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."],
  ])("%j is a 401", async (header, message) => {
    const r = await withAuth(header);
    expect([r.status, r.body.error]).toEqual([401, { message, type: "invalid_request_error", param: null, code: "invalid_api_key" }]);
  });
});

describe("every documented route with U+0000 in each string parameter", () => {
  test("answers 2xx or 4xx in OpenAI's error shape, never 5xx", async () => {
    const t = await startBareApi();
    try {
      const doc = (await call(t.url, "/openapi.json")).body as { paths: Record<string, Record<string, any>> };
      const file = await t.client.files.create({ file: await toFile(Buffer.from(jsonl([chatLine("a")])), "in.jsonl"), purpose: "batch" });
      const batch = await t.client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
      const real: Record<string, () => Promise<string>> = {
        file_id: async () => file.id,
        batch_id: async () => batch.id,
        upload_id: async () => (await postJson(t.url, "/v1/uploads", { filename: "u.jsonl", purpose: "batch", bytes: 100, mime_type: "application/jsonl" })).body.id,
        // Without BARGE_ADMIN_KEY the admin routes answer 401 here; admin-keys and admin-tenants try their hostile text with the key.
        key_id: async () => "key_000000000000000000000000",
        tenant: async () => "team-a",
      };
      // A valid JSON body per operation, each of whose string fields is then replaced in turn.
      const jsonBase: Record<string, Record<string, unknown>> = {
        "POST /v1/files/presign": { filename: "p.jsonl", purpose: "batch", bytes: 10 },
        "POST /v1/uploads": { filename: "u.jsonl", purpose: "batch", bytes: 10, mime_type: "application/jsonl" },
        "POST /v1/uploads/{upload_id}/complete": { part_ids: ["part_x"] },
        "POST /v1/batches": { input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", metadata: { k: "v" }, webhook_url: "https://example.com/h" },
        "POST /v1/s3-events": { Records: [] },
        "POST /v1/admin/keys": { tenant: "team-a", name: "k" },
        "PUT /v1/admin/tenants/{tenant}": { weight: 2, limits: { max_priority: 10 } },
      };
      const formBase: Record<string, Record<string, string>> = { "POST /v1/files": { purpose: "batch" } };
      const hostile = ["\u0000", "x\u0000y", "\ud800"];

      const sent: string[] = [];
      const bad: string[] = [];
      const send = async (label: string, path: string, init: RequestInit) => {
        const r = await fetch(t.url + path, init);
        const text = await r.text();
        sent.push(label);
        const shaped = r.status < 400 || (JSON.parse(text) as { error?: { type?: unknown } }).error?.type !== undefined;
        if (r.status >= 500 || !shaped) bad.push(`${label}: ${r.status} ${text.slice(0, 200)}`);
      };

      for (const [template, ops] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(ops)) {
          const name = `${method.toUpperCase()} ${template}`;
          const params = (op.parameters ?? []) as { name: string; in: string }[];
          const pathWith = async (nul?: string) => {
            let p = template;
            for (const { name: n } of params.filter((x) => x.in === "path")) p = p.replace(`{${n}}`, n === nul ? "a%00b" : await real[n]!());
            return p;
          };
          for (const { name: n } of params.filter((x) => x.in === "path")) await send(`${name} path ${n}`, await pathWith(n), { method });
          for (const { name: n } of params.filter((x) => x.in === "query")) await send(`${name} query ${n}`, `${await pathWith()}?${n}=%00`, { method });

          const content = op.requestBody?.content ?? {};
          const json = content["application/json"]?.schema as { properties: Record<string, unknown> } | undefined;
          if (json) {
            const base = jsonBase[name];
            expect(base, `a base body for ${name}`).toBeDefined();
            for (const field of Object.keys(json.properties)) {
              const was = base![field];
              for (const h of hostile) {
                const values = Array.isArray(was) ? [[h]] : was !== null && typeof was === "object" ? [{ [h]: "v" }, { k: h }] : [h];
                for (const v of values) {
                  await send(`${name} json ${field}=${JSON.stringify(v)}`, await pathWith(), {
                    method,
                    headers: { "content-type": "application/json" },
                    body: JSON.stringify({ ...base, [field]: v }),
                  });
                }
              }
            }
          }
          const form = content["multipart/form-data"]?.schema as { properties: Record<string, { format?: string }> } | undefined;
          if (form) {
            const fields = formBase[name] ?? {};
            const filePart = Object.entries(form.properties).find(([, s]) => s.format === "binary")![0];
            const post = async (label: string, over: Record<string, string>, filename = "f.jsonl") => {
              const body = new FormData();
              for (const [k, v] of Object.entries({ ...fields, ...over })) body.set(k, v);
              body.set(filePart, new Blob([jsonl([chatLine("f")])]), filename);
              await send(`${name} form ${label}`, await pathWith(), { method, body });
            };
            for (const field of Object.keys(form.properties).filter((f) => f !== filePart)) await post(field, { [field]: field === "metadata" ? '{"k":"\\u0000"}' : "x\u0000" });
            await post("filename", {}, "a\u0000.jsonl");
          }
        }
      }
      expect(bad).toEqual([]);
      // Every route was walked: each path param, query param and body field at least once.
      expect(sent.length).toBeGreaterThan(60);
      expect(sent.filter((s) => s.includes(" path "))).toHaveLength(20);
    } finally {
      await t.close();
    }
  });
});

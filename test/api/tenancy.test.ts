import { toFile } from "openai/uploads";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { call, chatLine, jsonl, postJson, sdkClient, waitForBatch } from "../support/api-harness.js";
import { createTestContext, type TestContext } from "../support/context.js";
import { serveEventsApp } from "../support/s3-events.js";
import { startServices, type Services } from "../support/services.js";

// Tenancy is a security boundary: another tenant's object answers 404 on every route, never a
// 403 or its data, and lists never show it. Two tenants share one Postgres and one bucket: the
// full API (validator and agent) runs as tenant `theirs` and makes a file, a completed batch, a
// pending upload and a pending presigned file; a second API on the same database and bucket
// acts as tenant `mine` and is tried on every route of its own OpenAPI document with those ids,
// so a route added later is tried too.

let ctx: TestContext;
let theirs: Services;
let mine: { url: string; close(): Promise<void> };
const ids: Record<string, string> = {};

beforeAll(async () => {
  ctx = await createTestContext({ BARGE_TENANT: "theirs", CHUNK_SIZE: "2", API_POLL_MS: "50", AGENT_POLL_MS: "50" });
  theirs = await startServices(ctx);
  mine = await serveEventsApp(ctx, { config: { ...ctx.config, BARGE_TENANT: "mine" } });

  const client = sdkClient(theirs.apiUrl);
  const file = await client.files.create({ file: await toFile(Buffer.from(jsonl(["t-0", "t-1", "t-2"].map((id) => chatLine(id, { model: "barge-sim-1" })))), "theirs.jsonl"), purpose: "batch" });
  const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
  const done = await waitForBatch(client, batch.id, ["completed"]);
  const upload = await postJson(theirs.apiUrl, "/v1/uploads", { filename: "u.jsonl", purpose: "batch", bytes: 100, mime_type: "application/jsonl" });
  const presigned = await postJson(theirs.apiUrl, "/v1/files/presign", { filename: "p.jsonl", purpose: "batch", bytes: 10 });
  expect([upload.status, presigned.status]).toEqual([200, 200]);
  Object.assign(ids, { file_id: file.id, batch_id: batch.id, upload_id: upload.body.id, output_file_id: done.output_file_id!, presigned_file_id: presigned.body.id });
}, 120_000);

afterAll(async () => {
  await mine?.close();
  await theirs?.stop();
  await ctx?.close();
});

/** A valid request for each operation, so only ownership decides the answer. */
function requestFor(name: string): RequestInit {
  const method = name.split(" ")[0]!;
  if (name === "POST /v1/uploads/{upload_id}/parts") {
    const form = new FormData();
    form.set("data", new Blob(["{}\n"]), "part");
    return { method, body: form };
  }
  const json: Record<string, unknown> = { "POST /v1/uploads/{upload_id}/complete": { part_ids: ["part_x"] } };
  return json[name] ? { method, headers: { "content-type": "application/json" }, body: JSON.stringify(json[name]) } : { method };
}

describe("another tenant's objects", () => {
  test("answer 404 on every documented route with a path id, for each of their ids", async () => {
    const doc = (await call(mine.url, "/openapi.json")).body as { paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>> };
    // The ids each path parameter is tried with: a file id is theirs input, their output, and a pending presign.
    const tried: Record<string, string[]> = {
      file_id: [ids.file_id!, ids.output_file_id!, ids.presigned_file_id!],
      batch_id: [ids.batch_id!],
      upload_id: [ids.upload_id!],
    };
    const walked: string[] = [];
    const leaks: string[] = [];
    for (const [template, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const names = (op.parameters ?? []).filter((p) => p.in === "path").map((p) => p.name);
        // Skipped: the admin routes hold no tenant's objects and no tenant key reaches them (403
        // admin_key_required, see admin-keys.test.ts); a walk of them with tenant keys belongs in its own test.
        if (names.length === 0 || template.startsWith("/v1/admin/")) continue;
        const name = `${method.toUpperCase()} ${template}`;
        expect(names.length, name).toBe(1);
        expect(tried[names[0]!], `ids for ${names[0]}`).toBeDefined();
        for (const id of tried[names[0]!]!) {
          const res = await fetch(mine.url + template.replace(`{${names[0]}}`, id), requestFor(name));
          const text = await res.text();
          walked.push(name);
          // A 404 in OpenAI's error shape, and nothing of theirs in it (filename, custom_ids).
          const shaped = res.headers.get("content-type")?.includes("application/json") && (JSON.parse(text) as { error?: unknown }).error !== undefined;
          if (res.status !== 404 || !shaped || /theirs\.jsonl|"t-\d"/.test(text)) leaks.push(`${name} with ${id}: ${res.status} ${text.slice(0, 160)}`);
        }
      }
    }
    expect(leaks).toEqual([]);
    // Every operation with a path id was tried, each file route with all three file ids.
    expect(new Set(walked).size).toBe(17);
  });

  test("never show in a list, and the same routes still serve their owner", async () => {
    const lists = ["/v1/files", "/v1/files?purpose=batch", "/v1/batches", "/v1/batches?status=completed,validating"];
    for (const path of lists) {
      const r = await call(mine.url, path);
      expect([path, r.status, r.body.data]).toEqual([path, 200, []]);
    }
    const own = await call(theirs.apiUrl, `/v1/batches/${ids.batch_id}`);
    expect([own.status, own.body.status]).toEqual([200, "completed"]);
    const listed = await call(theirs.apiUrl, "/v1/batches?status=completed");
    expect(listed.body.data.map((b: { id: string }) => b.id)).toEqual([ids.batch_id]);
  });
});

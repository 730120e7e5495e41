import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createApp } from "@barge/api";
import { SUPPORTED_ENDPOINTS } from "@barge/core";
import { call, startBareApi, type TestApi } from "../support/api-harness.js";
import { testLog } from "../support/context.js";

/** `/v1/files/:id/content` and `/v1/files/{file_id}/content` alike become `/v1/files/{}/content`. */
const shape = (path: string) => path.replace(/:\w+|\{\w+\}/g, "{}");

describe("GET /openapi.json", () => {
  let t: TestApi;
  let doc: { openapi: string; paths: Record<string, Record<string, any>> };
  beforeAll(async () => {
    t = await startBareApi();
    const r = await call(t.url, "/openapi.json");
    expect(r.status).toBe(200);
    doc = r.body;
  });
  afterAll(async () => {
    await t?.close();
  });

  test("describes exactly the routes the app serves", () => {
    const app = createApp({ db: t.ctx.db, s3: t.ctx.s3, bucket: t.ctx.bucket, config: t.ctx.config, log: testLog });
    // Middleware registers as method ALL; every real route has a method of its own. A route with
    // its own middleware (a rate limit) lists once per handler, side by side; the same route
    // registered again elsewhere would not sit next to its first entry.
    const listed = app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${shape(r.path)}`);
    const served = listed.filter((route, i) => route !== listed[i - 1]);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${shape(path)}`));
    expect(new Set(served).size).toBe(served.length);
    expect([...documented].sort()).toEqual([...served].sort());
    expect(doc.openapi).toBe("3.1.0");
  });

  test("request schemas come from the validators: what they allow, the API allows", async () => {
    const create = doc.paths["/v1/batches"]!.post.requestBody.content;
    const json = create["application/json"].schema;
    expect(json.required.sort()).toEqual(["completion_window", "endpoint", "input_file_id"]);
    expect(json.properties.endpoint.enum).toEqual([...SUPPORTED_ENDPOINTS]);
    expect(Object.keys(json.properties).sort()).toEqual(
      ["completion_window", "endpoint", "input_file_id", "metadata", "model", "output_expires_after", "priority", "webhook_url", "max_failure_rate", "min_requests"].sort(),
    );
    expect(json.properties.max_failure_rate).toMatchObject({ type: "number", minimum: 0, maximum: 1 });
    expect(json.properties.min_requests).toMatchObject({ type: "integer", minimum: 0 });
    expect(json.properties.output_expires_after.properties.seconds).toMatchObject({ minimum: 3600, maximum: 2_592_000 });
    expect(create["multipart/form-data"].schema.required).toContain("file");

    const list = doc.paths["/v1/batches"]!.get.parameters;
    expect(list.find((p: { name: string }) => p.name === "limit").schema).toMatchObject({ minimum: 1, maximum: 100, default: 20 });
    const status = list.find((p: { name: string }) => p.name === "status").schema;
    expect([status.type, status.description]).toEqual(["string", expect.stringContaining("up to 8 comma-separated: validating, failed, in_progress")]);

    const upload = doc.paths["/v1/uploads"]!.post.requestBody.content["application/json"].schema;
    expect(upload.required.sort()).toEqual(["bytes", "filename", "mime_type", "purpose"]);
    const part = doc.paths["/v1/uploads/{upload_id}/parts"]!.post.requestBody.content["multipart/form-data"].schema;
    expect(part.properties.data).toEqual({ type: "string", format: "binary" });
    expect(doc.paths["/v1/batches/{batch_id}"]!.get.parameters).toEqual([{ name: "batch_id", in: "path", required: true, schema: { type: "string" } }]);
  });

  test("response schemas list every field the API answers with", async () => {
    const batch = doc.paths["/v1/batches/{batch_id}"]!.get.responses["200"].content["application/json"].schema;
    for (const field of ["usage", "errors", "output_expires_after", "progress", "throughput_tokens_per_sec", "estimated_completion", "results_url"]) {
      expect(batch.required).toContain(field);
    }
    expect(doc.paths["/v1/files/{file_id}/content"]!.get.responses["200"].content).toHaveProperty("application/octet-stream");
  });
});

import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestApi, type TestApi } from "../support/api-harness.js";
import { listKeys } from "../support/seed.js";
import { fileForm, slowPost } from "../support/slow-client.js";

// Uploads over slow links: no total time limit, only an idle one and a header one (1 s each here). Whether the stalled
// upload's S3 multipart upload is aborted too is checked on a real S3 in conformance/upload-aborts.

const content = Buffer.from(Array.from({ length: 200 }, (_, i) => `{"custom_id":"r${i}","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}\n`).join(""));

describe("slow uploads", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi({ UPLOAD_IDLE_TIMEOUT_SECONDS: "1", API_HEADERS_TIMEOUT_SECONDS: "1" });
  });
  afterAll(async () => {
    await t?.close();
  });

  test("a client that keeps sending, with pauses under the idle timeout, is never cut however long it takes", async () => {
    // Ten pieces 400 ms apart: the upload lasts several idle timeouts, no pause reaches one.
    const res = await slowPost(t.url, "/v1/files", fileForm(content), { pieces: 10, pauseMs: 400 });
    expect(res.status).toBe(200);
    const file = JSON.parse(res.text.slice(res.text.indexOf("\r\n\r\n") + 4)) as { id: string; bytes: number; filename: string };
    expect(file).toMatchObject({ bytes: content.length, filename: "slow.jsonl" });
    expect(Buffer.from(await (await t.client.files.content(file.id)).arrayBuffer()).equals(content)).toBe(true);
  });

  test("a client that stops sending gets 408 request_timeout, the connection is closed, and nothing is kept", async () => {
    const before = await listKeys(t.ctx, "inputs/default/");
    const rows = () => t.ctx.db.selectFrom("files").select("id").execute();
    const rowsBefore = await rows();
    const res = await slowPost(t.url, "/v1/files", fileForm(content), { pieces: 10, pauseMs: 100, sendPieces: 4 });
    expect(res.status).toBe(408);
    expect(res.text).toContain('"code":"request_timeout"');
    expect(res.text).toContain("No bytes of the request body arrived for 1 s");
    expect(await listKeys(t.ctx, "inputs/default/")).toEqual(before);
    expect(await rows()).toEqual(rowsBefore);
  });

  test("an upload part that stalls gets the same 408", async () => {
    const upload = await t.client.uploads.create({ bytes: content.length, filename: "p.jsonl", mime_type: "application/jsonl", purpose: "batch" });
    const form = fileForm(content);
    const body = Buffer.from(form.body.toString("latin1").replace('name="file"', 'name="data"'), "latin1");
    const res = await slowPost(t.url, `/v1/uploads/${upload.id}/parts`, { ...form, body }, { pieces: 10, pauseMs: 100, sendPieces: 3 });
    expect(res.status).toBe(408);
    expect(await listKeys(t.ctx, `uploads/default/${upload.id}/`)).toEqual([]);
    expect(await t.ctx.db.selectFrom("upload_parts").select("id").where("upload_id", "=", upload.id).execute()).toEqual([]);
  });

  test("a JSON body that stops arriving gets 408 request_timeout after the idle timeout, and no batch is created", async () => {
    const json = { contentType: "application/json", body: Buffer.from(JSON.stringify({ input_file_id: "file-none", endpoint: "/v1/chat/completions", completion_window: "24h" })) };
    const batches = () => t.ctx.db.selectFrom("batches").select("id").execute();
    const before = await batches();
    const res = await slowPost(t.url, "/v1/batches", json, { pieces: 4, pauseMs: 100, sendPieces: 2 });
    expect(res.status).toBe(408);
    const body = JSON.parse(res.text.slice(res.text.indexOf("\r\n\r\n") + 4)) as { error: { code: string; message: string; type: string } };
    expect(body.error).toMatchObject({ code: "request_timeout", type: "invalid_request_error", message: "No bytes of the request body arrived for 1 s; the request was aborted." });
    expect(await batches()).toEqual(before);
  });

  test("a JSON body that trickles, each pause under the idle timeout, is read whole", async () => {
    const json = { contentType: "application/json", body: Buffer.from(JSON.stringify({ bytes: 10, filename: "trickle.jsonl", mime_type: "application/jsonl", purpose: "batch" })) };
    const res = await slowPost(t.url, "/v1/uploads", json, { pieces: 5, pauseMs: 400 });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text.slice(res.text.indexOf("\r\n\r\n") + 4))).toMatchObject({ object: "upload", filename: "trickle.jsonl", bytes: 10, status: "pending" });
  });

  test("a client that never finishes its headers (slowloris) still gets 408 and is dropped", async () => {
    const { hostname, port } = new URL(t.url);
    const socket = connect({ host: hostname, port: Number(port) });
    let text = "";
    socket.on("data", (d: Buffer) => (text += d.toString("utf8")));
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    socket.write("POST /v1/files HTTP/1.1\r\nHost: x\r\n");
    // Dribbled header lines are no progress: only complete headers count.
    for (let i = 0; i < 6; i++) {
      await sleep(300);
      if (!socket.destroyed) socket.write(`X-Slow-${i}: y\r\n`);
    }
    await closed;
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
  });
});

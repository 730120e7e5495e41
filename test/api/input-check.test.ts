import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { keys } from "@barge/core";
import { chatLine, jsonl, postJson, startTestApi, waitForBatch, type TestApi } from "../support/api-harness.js";
import { chunkRows } from "../support/results.js";

// A presigned upload is validated once: at complete. The batch validator then reuses that check
// while the object is the one it read (same ETag and size), and reads it again otherwise; an
// input object replaced since complete is not read at all (ETag pin). The
// API's own S3 client counts its GetObject calls per key on the real server.

describe("the upload check stands in for the batch validator's pass", () => {
  let t: TestApi;
  const gets = new Map<string, number>();
  const getsOf = (key: string) => gets.get(key) ?? 0;

  beforeAll(async () => {
    t = await startTestApi({ CHUNK_SIZE: "2" });
    t.ctx.s3.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "GetObjectCommand") {
          const key = (args.input as { Key: string }).Key;
          gets.set(key, getsOf(key) + 1);
        }
        return next(args);
      },
      { step: "initialize", name: "countGetObject" },
    );
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Presign, PUT `text`, complete; the completed file's id, its input key (which the check reads), and its staging key. */
  async function completed(text: string): Promise<{ id: string; key: string; staged: string }> {
    const p = (await postJson(t.url, "/v1/files/presign", { filename: "in.jsonl", purpose: "batch", bytes: Buffer.byteLength(text) })).body as { id: string; key: string; upload_url: string };
    expect((await fetch(p.upload_url, { method: "PUT", body: text })).status).toBe(200);
    const done = await postJson(t.url, `/v1/files/${p.id}/complete`, {});
    expect(done.status).toBe(200);
    return { id: p.id, key: keys.input("default", p.id), staged: p.key };
  }

  test("a batch on the completed file starts without reading the object again", async () => {
    const text = jsonl([chatLine("a"), chatLine("b"), "", chatLine("c")]);
    const f = await completed(text);
    expect([getsOf(f.staged), getsOf(f.key)]).toEqual([0, 1]);

    const b = await t.client.batches.create({ input_file_id: f.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const started = await waitForBatch(t.client, b.id, ["in_progress", "failed"]);
    expect(started.status).toBe("in_progress");
    expect(started.request_counts).toEqual({ total: 3, completed: 0, failed: 0 });
    expect([getsOf(f.staged), getsOf(f.key)]).toEqual([0, 1]);

    // The chunk index is the one the upload check recorded: offsets and lines of every 2nd request.
    const lines = text.split("\n");
    const offsetOf = (n: number) => Buffer.byteLength(lines.slice(0, n - 1).map((l) => `${l}\n`).join(""));
    const chunks = await chunkRows(t.ctx, b.id);
    expect(chunks.map((c) => [c.idx, c.model, c.request_start, c.request_count, c.start_line, c.start_offset, c.end_offset])).toEqual([
      [0, "m", 0, 2, 1, 0, offsetOf(4)],
      [1, "m", 2, 1, 4, offsetOf(4), Buffer.byteLength(text)],
    ]);
  });

  test("an object replaced after the check is not read: the batch fails as input_changed", async () => {
    const f = await completed(jsonl([chatLine("a"), chatLine("b")]));
    await t.ctx.s3.send(new PutObjectCommand({ Bucket: t.ctx.bucket, Key: f.key, Body: jsonl([chatLine("a"), chatLine("a")]) }));

    const b = await t.client.batches.create({ input_file_id: f.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const failed = await waitForBatch(t.client, b.id, ["in_progress", "failed"]);
    expect(failed.status).toBe("failed");
    expect(failed.errors?.data).toEqual([
      { code: "input_changed", message: `The content of input file '${f.id}' changed after it was stored, so none of its requests were run.`, param: "input_file_id", line: null },
    ]);
    expect(getsOf(f.key)).toBe(1);
    expect(await chunkRows(t.ctx, b.id)).toEqual([]);
  });

  test("a batch for another endpoint than the checked one is validated from the object", async () => {
    const f = await completed(jsonl([chatLine("a")]));
    const b = await t.client.batches.create({ input_file_id: f.id, endpoint: "/v1/embeddings", completion_window: "24h" });
    const failed = await waitForBatch(t.client, b.id, ["in_progress", "failed"]);
    expect(failed.status).toBe("failed");
    expect(failed.errors?.data).toEqual([
      { code: "url_mismatch", message: "The url '/v1/chat/completions' does not match the batch endpoint '/v1/embeddings'.", param: "url", line: 1 },
    ]);
    expect([getsOf(f.staged), getsOf(f.key)]).toEqual([0, 2]);
  });
});

import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startServerless } from "@barge/api/testing";
import type { LandedObject } from "@barge/core";
import { jsonl, sdkClient } from "../support/api-harness.js";
import { createTestContext, testLog, type TestContext } from "../support/context.js";
import { put, read, statusOf } from "../support/inbox.js";
import { chatLine } from "../support/seed.js";
import { startServices, type Services } from "../support/services.js";

const lines = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => chatLine(`${prefix}-${i}`, `hello ${i}`));

describe("serverless mode: the poller on s3rver, API, agent and engine-sim", () => {
  let ctx: TestContext;
  let services: Services;

  beforeAll(async () => {
    ctx = await createTestContext({ TRIGGER_POLL_SECONDS: "0.2", API_POLL_MS: "50", AGENT_POLL_MS: "50" });
    services = await startServices(ctx);
  });
  afterAll(async () => {
    await services?.stop();
    await ctx?.close();
  });

  test("an object PUT under inbox/ runs: results/<path>/ gets output.jsonl in order, manifest.json and a completed status.json", async () => {
    const etag = await put(ctx, "inbox/team/a.jsonl", jsonl(lines("a", 4)));
    const status = await statusOf(ctx, "results/team/a/", ["completed", "failed"]);
    expect([status.status, status.request_counts]).toEqual(["completed", { total: 4, completed: 4, failed: 0 }]);
    expect(status.metadata).toEqual({ source: "s3", input_key: "inbox/team/a.jsonl", input_etag: `"${etag}"` });
    expect(status.endpoint).toBe("/v1/chat/completions");

    const output = (await read(ctx, "results/team/a/output.jsonl"))!.trim().split("\n").map((l) => JSON.parse(l).custom_id);
    expect(output).toEqual(["a-0", "a-1", "a-2", "a-3"]);
    const manifest = JSON.parse((await read(ctx, "results/team/a/manifest.json"))!);
    expect([manifest.batch_id, manifest.output.key, manifest.output.lines, manifest.errors]).toEqual([status.id, "results/team/a/output.jsonl", 4, null]);
    expect(await read(ctx, "results/team/a/errors.jsonl")).toBeUndefined();

    // An ordinary batch to the API, whose input stays where the user put it.
    const client = sdkClient(services.apiUrl);
    const seen = await client.batches.retrieve(status.id);
    expect([seen.status, seen.metadata?.source, seen.output_file_id]).toEqual(["completed", "s3", status.output_file_id]);
    await client.files.delete(seen.input_file_id);
    const head = await ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: "inbox/team/a.jsonl" }));
    expect(head.ETag).toBe(`"${etag}"`);
  });

  test("an overwrite with new content is a second batch, whose results replace the first's", async () => {
    const first = await statusOf(ctx, "results/team/a/", ["completed"]);
    const etag = await put(ctx, "inbox/team/a.jsonl", jsonl(lines("b", 2)));
    const deadline = Date.now() + 30_000;
    let second: any;
    do {
      second = await statusOf(ctx, "results/team/a/", ["completed"]);
      if (Date.now() > deadline) throw new Error("the overwrite never ran");
    } while (second.id === first.id);
    expect(second.metadata.input_etag).toBe(`"${etag}"`);
    const output = (await read(ctx, "results/team/a/output.jsonl"))!.trim().split("\n").map((l) => JSON.parse(l).custom_id);
    expect(output).toEqual(["b-0", "b-1"]);
    const rows = await ctx.db.selectFrom("s3_objects").select(["outcome"]).where("key", "=", "inbox/team/a.jsonl").execute();
    expect(rows.map((r) => r.outcome)).toEqual(["batch", "batch"]);
  });

  test("a file failing validation gets status.json failed with errors.data naming the line", async () => {
    await put(ctx, "inbox/bad.jsonl", jsonl([chatLine("ok-1", "x"), "{not json", chatLine("ok-1", "dup")]));
    const status = await statusOf(ctx, "results/bad/", ["failed"]);
    expect(status.errors.data.map((e: any) => [e.code, e.line])).toEqual([
      ["invalid_json_line", 2],
      ["duplicate_custom_id", 3],
    ]);
    expect(await read(ctx, "results/bad/output.jsonl")).toBeUndefined();
  });

  test("bad user metadata fails the batch with the header named, and runs nothing", async () => {
    await put(ctx, "inbox/meta.jsonl", jsonl(lines("m", 1)), { "barge-priority": "high" });
    const status = await statusOf(ctx, "results/meta/", ["failed"]);
    expect(status.errors.data).toHaveLength(1);
    expect(status.errors.data[0]).toMatchObject({ code: "invalid_metadata", param: "x-amz-meta-barge-priority", line: null });
    expect(status.errors.data[0].message).toMatch(/^x-amz-meta-barge-priority: /);

    await put(ctx, "inbox/meta-json.jsonl", jsonl(lines("j", 1)), { "barge-metadata": "{oops" });
    const json = await statusOf(ctx, "results/meta-json/", ["failed"]);
    expect(json.errors.data[0]).toMatchObject({ code: "invalid_metadata", message: "x-amz-meta-barge-metadata: must be a JSON object" });

    // Webhooks are not configured here, so a webhook URL cannot be signed: refused as the API refuses it.
    await put(ctx, "inbox/hook.jsonl", jsonl(lines("h", 1)), { "barge-webhook-url": "https://example.com/hook" });
    const hook = await statusOf(ctx, "results/hook/", ["failed"]);
    expect(hook.errors.data[0]).toMatchObject({ code: "webhooks_not_configured", param: "x-amz-meta-barge-webhook-url" });
    const logged = await ctx.db.selectFrom("batch_events").select("kind").where("batch_id", "=", hook.id).orderBy("seq").execute();
    expect(logged.map((e) => e.kind)).toEqual(["created", "final"]);
  });

  test("user metadata sets priority and metadata; Barge's source keys win", async () => {
    const etag = await put(ctx, "inbox/own.jsonl", jsonl(lines("o", 1)), {
      "barge-priority": "7",
      "barge-metadata": JSON.stringify({ team: "nlp", source: "forged" }),
    });
    const status = await statusOf(ctx, "results/own/", ["completed"]);
    expect(status.metadata).toEqual({ team: "nlp", source: "s3", input_key: "inbox/own.jsonl", input_etag: `"${etag}"` });
    const row = await ctx.db.selectFrom("batches").select(["priority"]).where("id", "=", status.id).executeTakeFirstOrThrow();
    expect(row.priority).toBe(7);
  });
});

describe("serverless mode: the trigger's exactly-once and what starts nothing", () => {
  let ctx: TestContext;
  let serverless: ReturnType<typeof startServerless>;
  const batchesOf = async (key: string) =>
    (await ctx.db.selectFrom("batches").select(["id", "metadata"]).execute()).filter((b) => b.metadata?.input_key === key);
  const settled = async (key: string) => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const open = await ctx.db.selectFrom("s3_objects").select("key").where("key", "=", key).where("outcome", "is", null).execute();
      if (open.length === 0) return;
      if (Date.now() > deadline) throw new Error(`${key} never settled`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  beforeAll(async () => {
    ctx = await createTestContext({ API_POLL_MS: "50" });
    serverless = startServerless({ db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, config: ctx.config, log: testLog }, () => {});
  });
  afterAll(async () => {
    await Promise.all(serverless?.loops.map((l) => l.stop()) ?? []);
    await ctx?.close();
  });

  test("landed 5 times at once with the same object version makes exactly one batch; new content makes a second", async () => {
    const body = jsonl(lines("t", 2));
    const object = (etag: string): LandedObject => ({ bucket: ctx.bucket, key: "inbox/twice.jsonl", etag, size: Buffer.byteLength(body), versionId: null });
    const etag = await put(ctx, "inbox/twice.jsonl", body);
    const added = await Promise.all(Array.from({ length: 5 }, () => serverless.trigger.landed([object(etag)])));
    expect(added.reduce((a, b) => a + b, 0)).toBe(1);
    await settled("inbox/twice.jsonl");
    expect(await batchesOf("inbox/twice.jsonl")).toHaveLength(1);
    // Written on acceptance, before any validation: no validator runs here.
    const accepted = await statusOf(ctx, "results/twice/", ["validating"]);
    expect([accepted.object, accepted.input_file_id.startsWith("file-"), accepted.metadata.input_key]).toEqual(["batch", true, "inbox/twice.jsonl"]);
    // Replayed later (a late event, a poll), quoted as a listing quotes it, twice in one call: nothing new.
    expect(await serverless.trigger.landed([object(`"${etag}"`), object(etag)])).toBe(0);

    const newer = await put(ctx, "inbox/twice.jsonl", jsonl(lines("u", 3)));
    expect(await serverless.trigger.landed([{ ...object(newer), size: 10 }, object(`"${newer}"`), object(etag)])).toBe(1);
    await settled("inbox/twice.jsonl");
    const both = await batchesOf("inbox/twice.jsonl");
    expect(both.map((b) => b.metadata!.input_etag).sort()).toEqual([`"${etag}"`, `"${newer}"`].sort());
  });

  test("an event for a version the key no longer holds is settled as overwritten and starts nothing", async () => {
    const old = await put(ctx, "inbox/moved.jsonl", jsonl(lines("v", 1)));
    await put(ctx, "inbox/moved.jsonl", jsonl(lines("w", 2)));
    expect(await serverless.trigger.landed([{ bucket: ctx.bucket, key: "inbox/moved.jsonl", etag: old, size: 10, versionId: null }])).toBe(1);
    await settled("inbox/moved.jsonl");
    const row = await ctx.db.selectFrom("s3_objects").select(["outcome", "batch_id"]).where("key", "=", "inbox/moved.jsonl").executeTakeFirstOrThrow();
    expect(row).toEqual({ outcome: "overwritten", batch_id: null });
    expect(await batchesOf("inbox/moved.jsonl")).toHaveLength(0);
  });

  test("objects outside the prefix, not .jsonl, empty, under results/, in another bucket or with a bad key start nothing", async () => {
    const before = await ctx.db.selectFrom("batches").select("id").execute();
    const at = (key: string, over: Partial<LandedObject> = {}): LandedObject => ({ bucket: ctx.bucket, key, etag: "abc", size: 10, versionId: null, ...over });
    const ignored = [
      at("elsewhere/x.jsonl"),
      at("inbox/x.txt"),
      at("inbox/.jsonl"),
      at("inbox/empty.jsonl", { size: 0 }),
      at("results/x/output.jsonl"),
      at("inbox/x.jsonl", { bucket: "another-bucket" }),
      at(`inbox/${"k".repeat(1020)}.jsonl`),
      at("inbox/nul\u0000.jsonl"),
    ];
    expect(await serverless.trigger.landed(ignored)).toBe(0);
    expect(await ctx.db.selectFrom("s3_objects").select("key").where("key", "not like", "inbox/twice%").where("key", "not like", "inbox/moved%").execute()).toEqual([]);
    expect(await ctx.db.selectFrom("batches").select("id").execute()).toHaveLength(before.length);
  });
});

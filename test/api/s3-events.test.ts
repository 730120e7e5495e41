import { Agent, fetch as undiciFetch } from "undici";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createLogger } from "@barge/core";
import { call } from "../support/api-harness.js";
import { createTestContext, type TestContext } from "../support/context.js";
import { AWS_FIXTURE_OBJECT, EVENTS_TOKEN, eventFixture, handedOn, postEvent, RecordingTrigger, serveEventsApp } from "../support/s3-events.js";

const TOKEN = EVENTS_TOKEN;
const API_KEY = "sk-s3-events-api-key";
const fixture = eventFixture;
const aws = AWS_FIXTURE_OBJECT;

describe("POST /v1/s3-events: the token and Records[] bodies", () => {
  let ctx: TestContext;
  const closers: (() => Promise<void>)[] = [];
  let url: string;
  let offUrl: string;
  let noTriggerUrl: string;
  const trigger = new RecordingTrigger();
  const logLines: string[] = [];

  beforeAll(async () => {
    ctx = await createTestContext();
    const log = createLogger("api", "info", { write: (s: string) => void logLines.push(s) });
    const served = [
      await serveEventsApp(ctx, { config: { ...ctx.config, S3_EVENTS_TOKEN: TOKEN, BARGE_API_KEY: API_KEY }, trigger, log }),
      await serveEventsApp(ctx, { trigger }),
      await serveEventsApp(ctx, { config: { ...ctx.config, S3_EVENTS_TOKEN: TOKEN } }),
    ];
    closers.push(...served.map((s) => s.close));
    [url, offUrl, noTriggerUrl] = served.map((s) => s.url) as [string, string, string];
  });
  afterAll(async () => {
    for (const close of closers) await close();
    await ctx?.close();
  });

  const post = (body: unknown, headers: Record<string, string> = {}, query = `?token=${TOKEN}`, base = url) => postEvent(base, body, headers, query);
  const handed = (body: unknown, headers: Record<string, string> = {}) => handedOn(url, trigger, body, headers);

  test("the token is taken as a Bearer header (any case of the scheme) or ?token=, with no API key, which other routes still need", async () => {
    const body = fixture("rgw-push.json");
    for (const [headers, query] of [[{ authorization: `Bearer ${TOKEN}` }, ""], [{ authorization: `bEaReR   ${TOKEN}` }, ""], [{}, `?token=${TOKEN}`]] as const) {
      const r = await post(body, headers, query);
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ received: 1, new: expect.any(Number), ignored: 0 });
    }
    const files = await call(url, "/v1/files");
    expect(files.status).toBe(401);
    expect(files.body.error.code).toBe("invalid_api_key");
  });

  test("a missing or wrong token is a 401 and hands nothing on; the query token never reaches the log", async () => {
    const before = trigger.calls.length;
    const body = fixture("rgw-push.json");
    const missing = await post(body, {}, "");
    expect(missing.status).toBe(401);
    expect(missing.body.error).toMatchObject({ code: "invalid_s3_events_token", message: "Send S3_EVENTS_TOKEN as 'Authorization: Bearer <token>' or '?token=<token>'." });
    for (const [headers, query] of [[{ authorization: `Bearer ${TOKEN}x` }, ""], [{}, "?token=wrong"], [{ authorization: `Bearer ${API_KEY}` }, ""], [{}, `?token=${TOKEN.slice(0, -1)}`]] as const) {
      const r = await post(body, headers, query);
      expect(r.status).toBe(401);
      expect(r.body.error).toMatchObject({ code: "invalid_s3_events_token", message: "Incorrect S3 events token." });
    }
    expect(trigger.calls.length).toBe(before);
    const lines = logLines.filter((l) => l.includes('"route":"/v1/s3-events"'));
    expect(lines.length).toBeGreaterThan(5);
    expect(logLines.some((l) => l.includes(TOKEN) || l.includes("token=wrong"))).toBe(false);
  });

  test("with S3_EVENTS_TOKEN unset the route is off (404); with no trigger it is a 503", async () => {
    const off = await post(fixture("rgw-push.json"), {}, `?token=${TOKEN}`, offUrl);
    expect(off.status).toBe(404);
    expect(off.body.error).toMatchObject({ code: "s3_events_disabled", message: "POST /v1/s3-events is off: set S3_EVENTS_TOKEN to turn it on." });
    const down = await post(fixture("rgw-push.json"), {}, `?token=${TOKEN}`, noTriggerUrl);
    expect(down.status).toBe(503);
    expect(down.body.error.code).toBe("serverless_disabled");
    const denied = await post(fixture("rgw-push.json"), {}, "?token=wrong", noTriggerUrl);
    expect(denied.status).toBe(401);
  });

  test("each recorded body gives its exact objects: keys decoded for AWS and MinIO, as sent for RGW", async () => {
    expect(await handed(fixture("aws-s3-event.json"))).toEqual({ status: 200, body: { received: 1, new: 1, ignored: 0 }, objects: [aws] });
    expect((await handed(fixture("minio-webhook.json"))).objects).toEqual([
      { bucket: "barge", key: "inbox/a b.jsonl", etag: "5fc7298143efe1276d39a3466d4e255f-1", size: 2048, versionId: null },
    ]);
    expect((await handed(fixture("rgw-push.json"))).objects).toEqual([
      { bucket: "qbucket", key: "inbox/a b+c%(1)é.jsonl", etag: "4588ff3797b78d819d858fa3bdd82b09", size: 8, versionId: null },
    ]);
    expect((await handed(fixture("rgw-multipart.json"))).objects).toEqual([
      { bucket: "qbucket", key: "inbox/big.jsonl", etag: "d126ef08817d0490e207e456cb0ae080-2", size: 9437184, versionId: null },
    ]);
    expect(await handed(fixture("rgw-delete.json"))).toEqual({ status: 200, body: { received: 0, new: 0, ignored: 1 }, objects: [] });
    // Older RGW releases send the size as a string.
    const older = fixture("rgw-push.json");
    older.Records[0].s3.object.size = "8";
    expect((await handed(older)).objects.map((o) => o.size)).toEqual([8]);
  });

  test("removals and other events are ignored and counted; S3's test event names nothing", async () => {
    const base = fixture("aws-s3-event.json").Records[0];
    const body = {
      Records: [
        { eventName: "ObjectRemoved:Delete", s3: { bucket: { name: "barge" }, object: { key: "inbox/gone.jsonl" } } },
        { ...base, eventName: "s3:ObjectCreated:CompleteMultipartUpload" },
        { eventName: "s3:ObjectRemoved:DeleteMarkerCreated" },
        { eventName: "ObjectTagging:Put" },
      ],
    };
    expect(await handed(body)).toEqual({ status: 200, body: { received: 1, new: 0, ignored: 3 }, objects: [aws] });
    const from = trigger.calls.length;
    const testEvent = await post({ Service: "Amazon S3", Event: "s3:TestEvent", Time: "2026-12-04T03:00:00.000Z", Bucket: "barge" });
    expect(testEvent).toMatchObject({ status: 200, body: { received: 0, new: 0, ignored: 0 } });
    expect(await handed({ Records: [] })).toEqual({ status: 200, body: { received: 0, new: 0, ignored: 0 }, objects: [] });
    expect(trigger.calls.length).toBe(from);
  });

  test("malformed bodies are 400s naming what is wrong, and hand nothing on", async () => {
    const base = fixture("aws-s3-event.json").Records[0];
    const withObject = (object: Record<string, unknown>) => ({ Records: [{ ...base, s3: { ...base.s3, object: { ...base.s3.object, ...object } } }] });
    const noKey = withObject({});
    delete noKey.Records[0].s3.object.key;
    const cases: [unknown, string][] = [
      ["{not json", "The body is not JSON."],
      [new Uint8Array([0x7b, 0xff, 0x7d]), "The body is not UTF-8."],
      ["[1,2]", "The body is not an S3 event: it needs a 'Records' array."],
      [{}, "The body is not an S3 event: it needs a 'Records' array."],
      [{ Records: "x" }, "The body is not an S3 event: it needs a 'Records' array."],
      [{ Records: Array.from({ length: 1001 }, () => ({ eventName: "ObjectRemoved:Delete" })) }, "The body holds more than 1000 records."],
      [{ Records: [base, { s3: {} }] }, "Records[1] has no 'eventName'."],
      [noKey, "Records[0].s3.object.key: Invalid input: expected string, received undefined."],
      [withObject({ size: -1 }), "Records[0].s3.object.size: Too small: expected number to be >=0."],
      [withObject({ key: "inbox/%E0%A4%A.jsonl" }), "Records[0].s3.object.key is not validly URL-encoded."],
      [withObject({ key: "inbox/a%00.jsonl" }), "Records[0].s3.object.key holds U+0000 or an unpaired surrogate."],
      [withObject({ key: `inbox/${"k".repeat(1020)}.jsonl` }), "Records[0].s3.object.key is longer than 1024 bytes."],
    ];
    const from = trigger.calls.length;
    for (const [body, message] of cases) {
      const r = await post(body);
      expect({ status: r.status, error: r.body.error }).toEqual({ status: 400, error: { message, type: "invalid_request_error", param: null, code: "invalid_s3_event" } });
    }
    expect(trigger.calls.length).toBe(from);
  });

  test("a body over 1 MiB is a 413", async () => {
    // Its own connection: the server answers before reading the body, then drops the connection.
    const agent = new Agent();
    try {
      const res = await undiciFetch(`${url}/v1/s3-events?token=${TOKEN}`, { method: "POST", body: `{"Records":[],"pad":"${"x".repeat(1024 * 1024)}"}`, dispatcher: agent });
      expect(res.status).toBe(413);
      expect(((await res.json()) as any).error).toMatchObject({ code: "body_too_large", message: "An event body may hold at most 1048576 bytes." });
      // With no Content-Length, the limit is counted as the body streams in.
      const chunks = [new TextEncoder().encode('{"Records":[],"pad":"'), new Uint8Array(1024 * 1024).fill(0x78), new TextEncoder().encode('"}')];
      const stream = new ReadableStream({
        pull(controller) {
          const next = chunks.shift();
          if (next) controller.enqueue(next);
          else controller.close();
        },
      });
      const chunked = await undiciFetch(`${url}/v1/s3-events?token=${TOKEN}`, { method: "POST", body: stream, duplex: "half", dispatcher: agent });
      expect(chunked.status).toBe(413);
    } finally {
      await agent.close();
    }
  });
});

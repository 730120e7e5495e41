import { serve } from "@hono/node-server";
import { createSign } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { generate } from "selfsigned";
import { Agent, fetch as undiciFetch } from "undici";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createApp, type ApiDeps } from "@barge/api";
import { createLogger, type LandedObject, type ObjectTrigger } from "@barge/core";
import { call } from "../support/api-harness.js";
import { createTestContext, testLog, type TestContext } from "../support/context.js";

const TOKEN = "s3-events-token-0123456789";
const API_KEY = "sk-s3-events-api-key";
const CERT_URL = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem";
const EXPIRED_CERT_URL = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-expired.pem";
const GARBAGE_CERT_URL = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-garbage.pem";
const DOWN_CERT_URL = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-down.pem";

const fixture = (name: string): Record<string, any> => JSON.parse(readFileSync(new URL(`../fixtures/s3-events/${name}`, import.meta.url), "utf8"));

/** The trigger's contract as the route sees it: records every hand-off, counts an object version new once. */
class RecordingTrigger implements ObjectTrigger {
  readonly calls: LandedObject[][] = [];
  private readonly seen = new Set<string>();
  async landed(objects: LandedObject[]): Promise<number> {
    this.calls.push(objects);
    let fresh = 0;
    for (const o of objects) {
      const id = JSON.stringify([o.bucket, o.key, o.etag]);
      if (!this.seen.has(id)) fresh++;
      this.seen.add(id);
    }
    return fresh;
  }
}

/** The string AWS documents SNS signs, built here independently of the route's own. */
function canonical(m: Record<string, string>): string {
  const fields =
    m.Type === "Notification"
      ? ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
      : ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"];
  return fields.filter((f) => m[f] !== undefined).map((f) => `${f}\n${m[f]}\n`).join("");
}

describe("POST /v1/s3-events", () => {
  let ctx: TestContext;
  const servers: Server[] = [];
  let url: string;
  let offUrl: string;
  let noTriggerUrl: string;
  const trigger = new RecordingTrigger();
  const fetched: string[] = [];
  const logLines: string[] = [];
  let signingKey: string;
  let cert: string;
  let expiredCert: string;

  async function serveApp(deps: Partial<ApiDeps>): Promise<string> {
    const app = createApp({ db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, config: ctx.config, log: testLog, ...deps });
    const server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s as Server)) as Server;
    });
    servers.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  beforeAll(async () => {
    ctx = await createTestContext();
    const pems = await generate([{ name: "commonName", value: "sns.amazonaws.com" }], { keySize: 2048 });
    signingKey = pems.private;
    cert = pems.cert;
    const day = 24 * 3600 * 1000;
    const expired = await generate([{ name: "commonName", value: "sns.amazonaws.com" }], {
      keyPair: { privateKey: pems.private, publicKey: pems.public },
      notBeforeDate: new Date(Date.now() - 30 * day),
      notAfterDate: new Date(Date.now() - day),
    });
    expiredCert = expired.cert;
    const snsFetch = async (u: string) => {
      fetched.push(u);
      if (u === CERT_URL) return cert;
      if (u === EXPIRED_CERT_URL) return expiredCert;
      if (u === GARBAGE_CERT_URL) return "not a certificate";
      if (u.startsWith("https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription")) return "<ConfirmSubscriptionResponse/>";
      throw new Error(`no such URL: ${u}`);
    };
    const log = createLogger("api", "info", { write: (s: string) => void logLines.push(s) });
    url = await serveApp({ config: { ...ctx.config, S3_EVENTS_TOKEN: TOKEN, BARGE_API_KEY: API_KEY }, trigger, snsFetch, log });
    offUrl = await serveApp({ trigger });
    noTriggerUrl = await serveApp({ config: { ...ctx.config, S3_EVENTS_TOKEN: TOKEN } });
  });
  afterAll(async () => {
    for (const s of servers) {
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeIdleConnections();
      });
    }
    await ctx?.close();
  });

  const post = (body: unknown, headers: Record<string, string> = {}, query = `?token=${TOKEN}`, base = url) =>
    call(base, `/v1/s3-events${query}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body) });

  /** The body's answer and what it handed the trigger. */
  async function handed(body: unknown, headers: Record<string, string> = {}) {
    const from = trigger.calls.length;
    const r = await post(body, headers);
    return { status: r.status, body: r.body, objects: trigger.calls.slice(from).flat() };
  }

  function signed(m: Record<string, string>, version: "1" | "2" = "1"): Record<string, string> {
    const out = { ...m, SignatureVersion: version, SigningCertURL: m.SigningCertURL ?? CERT_URL };
    const s = createSign(version === "1" ? "RSA-SHA1" : "RSA-SHA256");
    s.update(canonical(out));
    return { ...out, Signature: s.sign(signingKey, "base64") };
  }
  const snsHeaders = (type: string) => ({ "x-amz-sns-message-type": type, "content-type": "text/plain; charset=UTF-8" });

  const aws: LandedObject = { bucket: "barge", key: "inbox/team a/report(1).jsonl", etag: "d41d8cd98f00b204e9800998ecf8427e", size: 1024, versionId: "096fKKXTRTtl3on89fVO.nfljtsv6qko" };

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

  test("an SNS subscription is confirmed by a GET of its SubscribeURL once its signature checks out", async () => {
    const m = signed(fixture("sns-subscription-confirmation.json"), "2");
    const from = fetched.length;
    const r = await post(m, snsHeaders("SubscriptionConfirmation"));
    expect(r).toMatchObject({ status: 200, body: { received: 0, new: 0, ignored: 0 } });
    expect(fetched.slice(from).filter((u) => u !== CERT_URL)).toEqual([m.SubscribeURL]);
    const unsub = await post(signed({ ...m, Type: "UnsubscribeConfirmation" }), snsHeaders("UnsubscribeConfirmation"));
    expect(unsub).toMatchObject({ status: 200, body: { received: 0, new: 0, ignored: 0 } });
    expect(fetched.slice(from).filter((u) => u !== CERT_URL)).toEqual([m.SubscribeURL]);
  });

  test("an SNS notification (signature v1 or v2) hands on its S3 event's objects; its certificate is fetched once", async () => {
    for (const version of ["1", "2"] as const) {
      const r = await handed(signed(fixture("sns-notification.json"), version), snsHeaders("Notification"));
      expect(r).toEqual({ status: 200, body: { received: 1, new: expect.any(Number), ignored: 0 }, objects: [aws] });
    }
    expect(fetched.filter((u) => u === CERT_URL)).toEqual([CERT_URL]);
  });

  test("a bad signature is a 403 and hands nothing on; a type header that disagrees with the body is a 400", async () => {
    const good = signed(fixture("sns-notification.json"));
    const inner = JSON.parse(good.Message!);
    inner.Records[0].s3.object.key = "inbox/other.jsonl";
    const tampered = { ...good, Message: JSON.stringify(inner) };
    const otherKey = await generate([{ name: "commonName", value: "sns.amazonaws.com" }], { keySize: 2048 });
    const forged = { ...good, Signature: createSign("RSA-SHA1").update(canonical(good)).sign(otherKey.private, "base64") };
    for (const m of [tampered, forged, { ...good, Subject: "changed" }, { ...good, SignatureVersion: "2" }]) {
      const r = await handed(m, snsHeaders("Notification"));
      expect(r).toEqual({ status: 403, body: { error: expect.objectContaining({ code: "invalid_signature", message: "The SNS message's signature does not match its content." }) }, objects: [] });
    }
    const expired = await handed(signed({ ...fixture("sns-notification.json"), SigningCertURL: EXPIRED_CERT_URL }), snsHeaders("Notification"));
    expect([expired.status, expired.body.error.message, expired.objects]).toEqual([403, "The SNS signing certificate is not valid now.", []]);
    const garbage = await handed(signed({ ...fixture("sns-notification.json"), SigningCertURL: GARBAGE_CERT_URL }), snsHeaders("Notification"));
    expect([garbage.status, garbage.body.error.message, garbage.objects]).toEqual([403, "The SNS signing certificate could not be read.", []]);
    // SNS out of reach is a 502 SNS retries, and the failure is not cached.
    for (let i = 0; i < 2; i++) {
      const down = await handed(signed({ ...fixture("sns-notification.json"), SigningCertURL: DOWN_CERT_URL }), snsHeaders("Notification"));
      expect([down.status, down.body.error.code, down.objects]).toEqual([502, "sns_unreachable", []]);
    }
    expect(fetched.filter((u) => u === DOWN_CERT_URL)).toHaveLength(2);
    const mismatch = await handed(good, snsHeaders("SubscriptionConfirmation"));
    expect(mismatch).toEqual({ status: 400, body: { error: expect.objectContaining({ message: "x-amz-sns-message-type says SubscriptionConfirmation, the body Notification." }) }, objects: [] });
  });

  test("a certificate or SubscribeURL off SNS's hosts is refused before anything is fetched", async () => {
    const from = fetched.length;
    for (const certUrl of [
      "https://sns.us-west-2.amazonaws.com.evil.example/cert.pem",
      "http://sns.us-west-2.amazonaws.com/cert.pem",
      "https://evil.example/SimpleNotificationService-x.pem",
      "https://sns.us-west-2.amazonaws.com:8443/cert.pem",
      "not a url",
    ]) {
      const r = await handed(signed({ ...fixture("sns-notification.json"), SigningCertURL: certUrl }), snsHeaders("Notification"));
      expect(r).toEqual({ status: 400, body: { error: expect.objectContaining({ code: "invalid_s3_event" }) }, objects: [] });
    }
    const foreign = signed({ ...fixture("sns-subscription-confirmation.json"), SubscribeURL: "https://evil.example/?Action=ConfirmSubscription" });
    const r = await post(foreign, snsHeaders("SubscriptionConfirmation"));
    expect(r.status).toBe(400);
    expect(r.body.error.message).toBe("'SubscribeURL' must be an https://sns.<region>.amazonaws.com URL.");
    expect(fetched.slice(from).filter((u) => u !== CERT_URL)).toEqual([]);
  });

  test("replays are handed on as they come (the trigger keeps each object version once)", async () => {
    const body = { Records: [{ ...fixture("rgw-push.json").Records[0], s3: { ...fixture("rgw-push.json").Records[0].s3, object: { ...fixture("rgw-push.json").Records[0].s3.object, key: "inbox/replayed.jsonl" } } }] };
    const first = await handed(body);
    const second = await handed(body);
    expect(first.body).toEqual({ received: 1, new: 1, ignored: 0 });
    expect(second.body).toEqual({ received: 1, new: 0, ignored: 0 });
    expect(second.objects).toEqual(first.objects);
    const sns = signed(fixture("sns-notification.json"), "2");
    const again = [await handed(sns, snsHeaders("Notification")), await handed(sns, snsHeaders("Notification"))];
    expect(again.map((a) => [a.status, a.objects])).toEqual([[200, [aws]], [200, [aws]]]);
    const tampered = await handed({ ...sns, Timestamp: "2026-12-04T03:00:01.500Z" }, snsHeaders("Notification"));
    expect(tampered.status).toBe(403);
  });
});

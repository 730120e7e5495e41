import { createSign } from "node:crypto";
import { generate } from "selfsigned";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createTestContext, type TestContext } from "../support/context.js";
import { AWS_FIXTURE_OBJECT, EVENTS_TOKEN, eventFixture, handedOn, postEvent, RecordingTrigger, serveEventsApp } from "../support/s3-events.js";

const CERT_URL = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem";
const EXPIRED_CERT_URL = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-expired.pem";
const GARBAGE_CERT_URL = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-garbage.pem";
const DOWN_CERT_URL = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-down.pem";
const fixture = eventFixture;
const aws = AWS_FIXTURE_OBJECT;

/** The string AWS documents SNS signs, built here independently of the route's own. */
function canonical(m: Record<string, string>): string {
  const fields =
    m.Type === "Notification"
      ? ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
      : ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"];
  return fields.filter((f) => m[f] !== undefined).map((f) => `${f}\n${m[f]}\n`).join("");
}

describe("POST /v1/s3-events: AWS S3 through an SNS subscription", () => {
  let ctx: TestContext;
  let url: string;
  let close: () => Promise<void>;
  const trigger = new RecordingTrigger();
  const fetched: string[] = [];
  let signingKey: string;

  beforeAll(async () => {
    ctx = await createTestContext();
    const pems = await generate([{ name: "commonName", value: "sns.amazonaws.com" }], { keySize: 2048 });
    signingKey = pems.private;
    const day = 24 * 3600 * 1000;
    const expired = await generate([{ name: "commonName", value: "sns.amazonaws.com" }], {
      keyPair: { privateKey: pems.private, publicKey: pems.public },
      notBeforeDate: new Date(Date.now() - 30 * day),
      notAfterDate: new Date(Date.now() - day),
    });
    const snsFetch = async (u: string) => {
      fetched.push(u);
      if (u === CERT_URL) return pems.cert;
      if (u === EXPIRED_CERT_URL) return expired.cert;
      if (u === GARBAGE_CERT_URL) return "not a certificate";
      if (u.startsWith("https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription")) return "<ConfirmSubscriptionResponse/>";
      throw new Error(`no such URL: ${u}`);
    };
    ({ url, close } = await serveEventsApp(ctx, { config: { ...ctx.config, S3_EVENTS_TOKEN: EVENTS_TOKEN }, trigger, snsFetch }));
  });
  afterAll(async () => {
    await close?.();
    await ctx?.close();
  });

  const post = (body: unknown, headers: Record<string, string> = {}) => postEvent(url, body, headers);
  const handed = (body: unknown, headers: Record<string, string> = {}) => handedOn(url, trigger, body, headers);

  function signed(m: Record<string, string>, version: "1" | "2" = "1"): Record<string, string> {
    const out = { ...m, SignatureVersion: version, SigningCertURL: m.SigningCertURL ?? CERT_URL };
    const s = createSign(version === "1" ? "RSA-SHA1" : "RSA-SHA256");
    s.update(canonical(out));
    return { ...out, Signature: s.sign(signingKey, "base64") };
  }
  const snsHeaders = (type: string) => ({ "x-amz-sns-message-type": type, "content-type": "text/plain; charset=UTF-8" });

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

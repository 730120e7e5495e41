import { setTimeout as sleep } from "node:timers/promises";
import { DeleteObjectCommand, GetObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getObjectStream, headObject, isPreconditionFailed, presignGet, presignPut, putObject } from "@barge/core";
import { createTestContext, type TestContext } from "../support/context.js";
import { describeStrict, sha256, xmlErrorCode } from "./helpers.js";

// Presigned URLs are Barge's upload and download path for clients without credentials, so the
// server must refuse any URL that was altered or has lapsed, and must store nothing for it.

let ctx: TestContext;
/** URLs presigned for one second in `beforeAll`, which lets them all lapse with one wait. */
const lapsed = { put: "", putRaised: "", get: "", getContent: `result ${Math.random()}` };
const LAPSED_PUT_KEY = "inputs/t/expired.jsonl";
const LAPSED_RAISED_KEY = "inputs/t/tamper-expired.jsonl";
const LAPSED_GET_KEY = "outputs/t/expired/output.jsonl";
beforeAll(async () => {
  ctx = await createTestContext();
  await putObject(ctx, LAPSED_GET_KEY, lapsed.getContent);
  lapsed.put = await presignPut(ctx, LAPSED_PUT_KEY, 1, Buffer.byteLength(BODY));
  lapsed.putRaised = replaceParam(await presignPut(ctx, LAPSED_RAISED_KEY, 1, Buffer.byteLength(BODY)), "X-Amz-Expires", () => "3600");
  lapsed.get = await presignGet(ctx, LAPSED_GET_KEY, 1);
  // X-Amz-Date has whole seconds, so one more second makes sure they have lapsed.
  await sleep(2200);
});
afterAll(async () => {
  await ctx?.close();
});

const BODY = '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}\n';

/** Sends a presigned request; returns the status and the XML error code of a refusal. */
async function send(url: string, method: "PUT" | "GET", body?: string): Promise<{ status: number; code: string | undefined; text: string }> {
  const res = await fetch(url, { method, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  return { status: res.status, code: res.status >= 400 ? xmlErrorCode(text) : undefined, text };
}

function replaceParam(url: string, name: string, value: (old: string) => string): string {
  const u = new URL(url);
  const old = u.searchParams.get(name);
  if (old === null) throw new Error(`${name} missing from ${url}`);
  u.searchParams.set(name, value(old));
  return u.toString();
}

/** Flips the first hex digit of the signature. */
const flip = (sig: string) => `${sig[0] === "0" ? "1" : "0"}${sig.slice(1)}`;

describeStrict("presigned PUT tampered with", () => {
  const cases: [string, (url: string) => string, string][] = [
    ["its key (path)", (url) => url.replace("/inputs/t/tamper-key.jsonl?", "/inputs/t/tamper-key-other.jsonl?"), "inputs/t/tamper-key-other.jsonl"],
    ["its X-Amz-Expires", (url) => replaceParam(url, "X-Amz-Expires", () => "7200"), "inputs/t/tamper-key.jsonl"],
    ["its X-Amz-Signature", (url) => replaceParam(url, "X-Amz-Signature", flip), "inputs/t/tamper-key.jsonl"],
  ];
  it.each(cases)("%s is refused with 403 SignatureDoesNotMatch and stores nothing", async (_what, tamper, target) => {
    const key = "inputs/t/tamper-key.jsonl";
    const url = await presignPut(ctx, key, 3600, Buffer.byteLength(BODY));
    const tampered = tamper(url);
    expect(tampered).not.toBe(url);
    const res = await send(tampered, "PUT", BODY);
    expect(res.status).toBe(403);
    expect(res.code).toBe("SignatureDoesNotMatch");
    expect(await headObject(ctx, key)).toBeUndefined();
    expect(await headObject(ctx, target)).toBeUndefined();
    // The untampered URL works, so the refusal was the tampering's doing.
    const ok = await send(url, "PUT", BODY);
    expect(ok.status).toBe(200);
    expect(await headObject(ctx, key)).toMatchObject({ bytes: Buffer.byteLength(BODY) });
    await ctx.s3.send(new DeleteObjectCommand({ Bucket: ctx.bucket, Key: key }));
  });

  it("an expired URL whose X-Amz-Expires was raised is refused with 403 and stores nothing", async () => {
    const res = await send(lapsed.putRaised, "PUT", BODY);
    expect(res.status).toBe(403);
    // RGW checks the signature first; other servers may report the expiry instead. Both refuse.
    if (ctx.s3Kind === "rgw") expect(res.code).toBe("SignatureDoesNotMatch");
    else expect(["SignatureDoesNotMatch", "AccessDenied"]).toContain(res.code);
    expect(await headObject(ctx, LAPSED_RAISED_KEY)).toBeUndefined();
  });
});

describeStrict("presigned GET tampered with its key", () => {
  it("does not read another object: 403 SignatureDoesNotMatch, no bytes of it", async () => {
    const secret = `secret ${sha256(String(Math.random()))}`;
    await putObject(ctx, "outputs/t/private/output.jsonl", secret);
    await putObject(ctx, "outputs/t/public/output.jsonl", "public");
    const url = await presignGet(ctx, "outputs/t/public/output.jsonl", 3600);
    const res = await send(url.replace("/outputs/t/public/", "/outputs/t/private/"), "GET");
    expect(res.status).toBe(403);
    expect(res.code).toBe("SignatureDoesNotMatch");
    expect(res.text).not.toContain(secret);
    expect(await send(url, "GET")).toMatchObject({ status: 200, text: "public" });
  });
});

// s3rver enforces expiry too, so these run on every server.
describe("expired presigned URLs", () => {
  it("an expired PUT is refused with 403 AccessDenied and stores nothing", async () => {
    const res = await send(lapsed.put, "PUT", BODY);
    expect(res.status).toBe(403);
    expect(res.code).toBe("AccessDenied");
    expect(await headObject(ctx, LAPSED_PUT_KEY)).toBeUndefined();
  });

  it("an expired GET is refused with 403 AccessDenied and returns none of the object", async () => {
    const res = await send(lapsed.get, "GET");
    expect(res.status).toBe(403);
    expect(res.code).toBe("AccessDenied");
    expect(res.text).not.toContain(lapsed.getContent);
  });
});

// The presigned PUT signs Content-Length, so the size declared at presign is the only one S3
// stores. s3rver does not check a presigned request's signed headers against the request, so
// only a strict server shows it.
describeStrict("presigned PUT signed for its declared size", () => {
  it("refuses a longer or a shorter body and stores nothing; the declared size is stored", async () => {
    const key = "staging/t/sized.jsonl";
    const url = await presignPut(ctx, key, 3600, Buffer.byteLength(BODY));
    expect(new URL(url).searchParams.get("X-Amz-SignedHeaders")?.split(";")).toContain("content-length");
    for (const body of [`${BODY}${BODY}`, BODY.slice(0, 10)]) {
      const res = await send(url, "PUT", body);
      expect(res.status, `${body.length} bytes`).toBe(403);
      expect(res.code).toBe("SignatureDoesNotMatch");
      expect(await headObject(ctx, key)).toBeUndefined();
    }
    expect((await send(url, "PUT", BODY)).status).toBe(200);
    expect(await headObject(ctx, key)).toMatchObject({ bytes: Buffer.byteLength(BODY) });
  });
});

// What the ETag pin of inputs rests on: the server itself refuses a read of an object whose ETag
// is not the one named. s3rver ignores If-Match; Barge's reads also compare the answer's ETag,
// which covers it there.
describeStrict("conditional reads", () => {
  it("GET with a stale If-Match is 412 PreconditionFailed; the current one reads", async () => {
    const key = "inputs/t/pinned.jsonl";
    await putObject(ctx, key, BODY);
    const first = (await headObject(ctx, key))!.etag;
    await putObject(ctx, key, BODY.replace('"a"', '"b"'));
    const err = await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key, IfMatch: first })).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "PreconditionFailed", $metadata: { httpStatusCode: 412 } });
    expect(isPreconditionFailed(err)).toBe(true);
    const now = (await headObject(ctx, key))!.etag;
    const body = await getObjectStream(ctx, key, { start: 0, end: 20 }, { ifMatch: now });
    expect(Buffer.concat(await body.toArray()).toString()).toBe(BODY.replace('"a"', '"b"').slice(0, 20));
  });
});

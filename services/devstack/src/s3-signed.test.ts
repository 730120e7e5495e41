import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { s3CredentialsFile } from "./s3-credentials.js";
import { startSupervisedS3, type SupervisedS3, type SupervisorLog } from "./s3-supervisor.js";

// The embedded S3 as the stack runs it: s3rver behind the SigV4-checking proxy, in its child process.
const BUCKET = "signed";
const log = { error: () => {}, warn: () => {} } as unknown as SupervisorLog;
let dir: string;
let s3: SupervisedS3;
let client: S3Client;

function clientWith(accessKeyId: string, secretAccessKey: string, extra: { systemClockOffset?: number; endpoint?: string } = {}): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    maxAttempts: 1,
    ...extra,
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "barge-s3-signed-"));
  s3 = await startSupervisedS3(dir, [BUCKET], { log });
  client = clientWith(s3.accessKeyId, s3.secretAccessKey);
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "seed.txt", Body: "seeded" }));
});

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Status, S3 error code and message of a raw HTTP answer. */
async function xmlError(res: Response): Promise<{ status: number; code?: string; message?: string }> {
  const text = await res.text();
  return { status: res.status, code: /<Code>([^<]*)<\/Code>/.exec(text)?.[1], message: /<Message>([^<]*)<\/Message>/.exec(text)?.[1] };
}

/** The SDK's view of a refused call: its error name and HTTP status. */
async function sdkError(p: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  const err = (await p.then(() => new Error("the call succeeded"), (e: unknown) => e)) as { name: string; $metadata?: { httpStatusCode?: number } };
  return { name: err.name, status: err.$metadata?.httpStatusCode };
}

async function read(c: S3Client, Key: string): Promise<string> {
  return (await c.send(new GetObjectCommand({ Bucket: BUCKET, Key }))).Body!.transformToString();
}

function safeReadlink(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return "";
  }
}

const accessDenied = { status: 403, code: "AccessDenied", message: "Access Denied" };

describe("the embedded S3 accepts only SigV4 requests signed with its own credentials", () => {
  it("refuses unsigned GET, PUT and list with 403 AccessDenied, and the PUT stores nothing", async () => {
    expect(await xmlError(await fetch(`${s3.endpoint}/${BUCKET}/seed.txt`))).toEqual(accessDenied);
    expect(await xmlError(await fetch(`${s3.endpoint}/${BUCKET}?list-type=2`))).toEqual(accessDenied);
    expect(await xmlError(await fetch(`${s3.endpoint}/`))).toEqual(accessDenied);
    expect(await xmlError(await fetch(`${s3.endpoint}/${BUCKET}/planted.txt`, { method: "PUT", body: "overwrite" }))).toEqual(accessDenied);
    expect(await sdkError(client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "planted.txt" })))).toEqual({ name: "NoSuchKey", status: 404 });
  });

  it("refuses s3rver's well-known S3RVER key, a wrong secret, a V2 header and a skewed clock", async () => {
    expect(await sdkError(clientWith("S3RVER", "S3RVER").send(new ListObjectsV2Command({ Bucket: BUCKET })))).toEqual({ name: "InvalidAccessKeyId", status: 403 });
    const wrong = clientWith(s3.accessKeyId, `${s3.secretAccessKey}x`);
    expect(await sdkError(wrong.send(new PutObjectCommand({ Bucket: BUCKET, Key: "seed.txt", Body: "overwritten" })))).toEqual({ name: "SignatureDoesNotMatch", status: 403 });
    const v2 = await fetch(`${s3.endpoint}/${BUCKET}/seed.txt`, { headers: { authorization: `AWS ${s3.accessKeyId}:c2lnbmF0dXJl` } });
    expect(await xmlError(v2)).toEqual({ status: 403, code: "AccessDenied", message: "The Authorization header is not AWS Signature Version 4 (AWS4-HMAC-SHA256)" });
    const late = clientWith(s3.accessKeyId, s3.secretAccessKey, { systemClockOffset: -20 * 60_000 });
    expect(await sdkError(late.send(new GetObjectCommand({ Bucket: BUCKET, Key: "seed.txt" })))).toEqual({ name: "RequestTimeTooSkewed", status: 403 });
    expect(await read(client, "seed.txt")).toBe("seeded");
  });

  it("refuses an unsigned multipart POST-object (the dicer payload) with 403, and the child keeps serving", async () => {
    const pid = s3.pid();
    const boundary = "----WebKitFormBoundaryoo6vortfDzBsDiro";
    const res = await fetch(`${s3.endpoint}/${BUCKET}`, {
      method: "POST",
      headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
      body: `--${boundary}\r\n Content-Disposition: form-data; name="bildbeschreibung"\r\n\r\n\r\n--${boundary}--`,
    });
    expect(await xmlError(res)).toEqual(accessDenied);
    const form = new FormData();
    form.set("key", "form.txt");
    form.set("file", new Blob(["from a form"]), "form.txt");
    expect(await xmlError(await fetch(`${s3.endpoint}/${BUCKET}`, { method: "POST", body: form }))).toEqual(accessDenied);
    expect(s3.pid()).toBe(pid);
    expect(s3.restarts()).toBe(0);
    expect(await sdkError(client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "form.txt" })))).toEqual({ name: "NoSuchKey", status: 404 });
  });

  it("serves the SDK signed: put, get, list, and a 6 MiB multipart Upload from a stream", async () => {
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "dir/a b+c.txt", Body: "spaced" }));
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "dir/stream.txt", Body: Readable.from([Buffer.from("streamed")]), ContentLength: 8 }));
    expect(await read(client, "dir/a b+c.txt")).toBe("spaced");
    expect(await read(client, "dir/stream.txt")).toBe("streamed");
    const big = Buffer.alloc(6 * 1024 * 1024 + 17, "z");
    await new Upload({ client, params: { Bucket: BUCKET, Key: "dir/big.bin", Body: Readable.from([big]) }, partSize: 5 * 1024 * 1024 }).done();
    const got = Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "dir/big.bin" }))).Body!.transformToByteArray());
    expect(createHash("sha256").update(got).digest("hex")).toBe(createHash("sha256").update(big).digest("hex"));
    const list = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "dir/" }));
    expect(list.Contents?.map((o) => [o.Key, o.Size])).toEqual([["dir/a b+c.txt", 6], ["dir/big.bin", big.length], ["dir/stream.txt", 8]]);
  });

  it("serves a presigned GET; refuses an expired, a tampered and an incomplete one", async () => {
    const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: BUCKET, Key: "seed.txt" }), { expiresIn: 60 });
    const ok = await fetch(url);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe("seeded");
    const expired = await getSignedUrl(client, new GetObjectCommand({ Bucket: BUCKET, Key: "seed.txt" }), { expiresIn: 1, signingDate: new Date(Date.now() - 60_000) });
    expect(await xmlError(await fetch(expired))).toEqual({ status: 403, code: "AccessDenied", message: "Request has expired" });
    const tampered = url.replace("/seed.txt?", "/dir/big.bin?");
    expect(await xmlError(await fetch(tampered))).toMatchObject({ status: 403, code: "SignatureDoesNotMatch" });
    const partial = new URL(url);
    partial.searchParams.delete("X-Amz-Signature");
    expect(await xmlError(await fetch(partial))).toMatchObject({ status: 403, code: "AuthorizationQueryParametersError" });
  });

  it("holds a presigned PUT to its signed Content-Length: another size gets 403 and stores nothing", async () => {
    const put = (Key: string, bytes: number) =>
      getSignedUrl(client, new PutObjectCommand({ Bucket: BUCKET, Key, ContentLength: bytes }), { expiresIn: 60, signableHeaders: new Set(["content-length"]) });
    const url = await put("sized.txt", 5);
    expect(new URL(url).searchParams.get("X-Amz-SignedHeaders")).toBe("content-length;host");
    expect(await xmlError(await fetch(url, { method: "PUT", body: "longer than five" }))).toMatchObject({ status: 403, code: "SignatureDoesNotMatch" });
    expect(await sdkError(client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "sized.txt" })))).toEqual({ name: "NoSuchKey", status: 404 });
    expect((await fetch(url, { method: "PUT", body: "five!" })).status).toBe(200);
    expect(await read(client, "sized.txt")).toBe("five!");
  });

  it("answers an unsigned `Expect: 100-continue` upload with 403 before asking for its body", async () => {
    const { hostname, port } = new URL(s3.endpoint);
    const answer = await new Promise<{ status: number | undefined; continued: boolean; body: string }>((resolve, reject) => {
      let continued = false;
      const req = httpRequest({ hostname, port, method: "PUT", path: `/${BUCKET}/awaited.bin`, headers: { expect: "100-continue", "content-length": 4 } });
      req.on("continue", () => {
        continued = true;
        req.end("body");
      });
      req.on("response", (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode, continued, body }));
      });
      req.on("error", reject);
      req.flushHeaders();
    });
    expect(answer.status).toBe(403);
    expect(answer.continued).toBe(false);
    expect(answer.body).toContain("<Code>AccessDenied</Code>");
  });

  it("lets s3rver listen on no TCP port: the child's only listening TCP socket is the proxy's", () => {
    const pid = s3.pid()!;
    const inodes = new Set(readdirSync(`/proc/${pid}/fd`).map((fd) => /^socket:\[(\d+)\]$/.exec(safeReadlink(`/proc/${pid}/fd/${fd}`))?.[1]));
    const listening = ["/proc/net/tcp", "/proc/net/tcp6"]
      .flatMap((f) => readFileSync(f, "utf8").trim().split("\n").slice(1))
      .map((line) => line.trim().split(/\s+/))
      .filter((cols) => cols[3] === "0A" && inodes.has(cols[9]))
      .map((cols) => parseInt(cols[1]!.split(":")[1]!, 16));
    expect(listening).toEqual([Number(new URL(s3.endpoint).port)]);
  });

  it("passes response-header overrides of a signed GET through to s3rver", async () => {
    const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "seed.txt", ResponseContentDisposition: 'attachment; filename="seed.txt"' }));
    expect(got.ContentDisposition).toBe('attachment; filename="seed.txt"');
    expect(await got.Body!.transformToString()).toBe("seeded");
  });

  it("keeps its generated credentials in an owner-only file and reuses them after a restart", async () => {
    const file = s3CredentialsFile(dir);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const saved = JSON.parse(readFileSync(file, "utf8")) as { accessKeyId: string; secretAccessKey: string };
    expect(saved).toEqual({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey });
    expect(s3.accessKeyId).toMatch(/^BARGE[0-9A-F]{20}$/);
    expect(s3.secretAccessKey).toHaveLength(40);
    const port = Number(new URL(s3.endpoint).port);
    await s3.stop();
    s3 = await startSupervisedS3(dir, [BUCKET], { log, port });
    expect({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }).toEqual(saved);
    expect(await read(client, "seed.txt")).toBe("seeded");
    const other = mkdtempSync(join(tmpdir(), "barge-s3-other-"));
    const second = await startSupervisedS3(other, [BUCKET], { log });
    try {
      expect(second.accessKeyId).not.toBe(s3.accessKeyId);
      const crossed = clientWith(s3.accessKeyId, s3.secretAccessKey, { endpoint: second.endpoint });
      expect(await sdkError(crossed.send(new ListObjectsV2Command({ Bucket: BUCKET })))).toEqual({ name: "InvalidAccessKeyId", status: 403 });
      crossed.destroy();
    } finally {
      await second.stop();
      rmSync(other, { recursive: true, force: true });
    }
  });
});

import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmbeddedS3, type EmbeddedS3 } from "./s3.js";

// s3rver 3.7.1 as patched (patches/s3rver@3.7.1.patch): busboy 1.x instead of 0.3/dicer, fast-xml-parser 4.x instead of 3.x.
const BUCKET = "deps";
let dir: string;
let s3: EmbeddedS3;
let client: S3Client;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "barge-s3-deps-"));
  s3 = await startEmbeddedS3(dir, [BUCKET]);
  client = new S3Client({
    endpoint: s3.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
});

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The version of `name` that s3rver itself resolves. */
function versionSeenByS3rver(name: string): string {
  const s3rverRequire = createRequire(createRequire(import.meta.url).resolve("s3rver"));
  const main = s3rverRequire.resolve(name);
  let at = dirname(main);
  while (!at.endsWith(join("node_modules", name))) at = dirname(at);
  return (JSON.parse(readFileSync(join(at, "package.json"), "utf8")) as { version: string }).version;
}

describe("embedded s3rver on maintained parsers", () => {
  it("resolves busboy 1.x and fast-xml-parser 4.x, not the vulnerable versions", () => {
    expect(versionSeenByS3rver("busboy")).toBe("1.6.0");
    expect(versionSeenByS3rver("fast-xml-parser")).toBe("4.5.7");
  });

  it("parses CompleteMultipartUpload bodies: the parts join in order", async () => {
    const Key = "joined.bin";
    const partA = Buffer.alloc(5 * 1024 * 1024, "a");
    const partB = Buffer.from("tail & <end>");
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key }));
    const a = await client.send(new UploadPartCommand({ Bucket: BUCKET, Key, UploadId, PartNumber: 1, Body: partA }));
    const b = await client.send(new UploadPartCommand({ Bucket: BUCKET, Key, UploadId, PartNumber: 2, Body: partB }));
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: BUCKET,
        Key,
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: a.ETag }, { PartNumber: 2, ETag: b.ETag }] },
      }),
    );
    const got = Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key }))).Body!.transformToByteArray());
    expect(got.length).toBe(partA.length + partB.length);
    expect(got.subarray(partA.length).toString()).toBe("tail & <end>");
  });

  it("parses DeleteObjects bodies, entity-escaped and numeric keys included", async () => {
    const keys = ["del/a&b<c>'q\".txt", "del/0123"];
    for (const Key of keys) await client.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: "x" }));
    const out = await client.send(
      new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: keys.map((Key) => ({ Key })) } }),
    );
    expect(out.Deleted?.map((d) => d.Key).sort()).toEqual([...keys].sort());
    const left = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "del/" }));
    expect(left.KeyCount).toBe(0);
  });

  it("answers errors as S3 XML", async () => {
    const err = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "missing" })).catch((e: unknown) => e);
    expect((err as { name: string }).name).toBe("NoSuchKey");
    expect((err as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(404);
  });

  it("answers the malformed multipart POST that crashed dicer with 400 and keeps serving", async () => {
    const boundary = "----WebKitFormBoundaryoo6vortfDzBsDiro";
    const body = `--${boundary}\r\n Content-Disposition: form-data; name="bildbeschreibung"\r\n\r\n\r\n--${boundary}--`;
    const res = await fetch(`${s3.endpoint}/${BUCKET}`, {
      method: "POST",
      headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
      body,
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("<Code>MalformedPOSTRequest</Code>");
    const noBoundary = await fetch(`${s3.endpoint}/${BUCKET}`, {
      method: "POST",
      headers: { "content-type": "multipart/form-data" },
      body,
    });
    expect(noBoundary.status).toBe(400);
    expect(await noBoundary.text()).toContain("<Code>MalformedPOSTRequest</Code>");
    const list = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "joined" }));
    expect(list.Contents?.map((o) => o.Key)).toEqual(["joined.bin"]);
  });
});

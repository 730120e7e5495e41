import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readS3Credentials, startStack, type Stack } from "@barge/devstack";
import { Client as MinioClient } from "minio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/processes.js";

// The embedded stack as `pnpm start` builds it, with no setting given: the poller is on.
const dataDir = mkdtempSync(join(tmpdir(), "barge-stack-inbox-"));
let stack: Stack;
let client: S3Client;
/** A second, independent S3 client (MinIO's), signing its own way through the embedded S3's verifier. */
let minio: MinioClient;

beforeAll(async () => {
  stack = await startStack({
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", LOG_LEVEL: "silent" },
    dataDir,
    anyPort: true,
  });
  const creds = readS3Credentials(stack.s3CredentialsFile!);
  client = new S3Client({ endpoint: stack.s3Endpoint, region: "us-east-1", forcePathStyle: true, credentials: creds });
  const endpoint = new URL(stack.s3Endpoint);
  minio = new MinioClient({
    endPoint: endpoint.hostname,
    port: Number(endpoint.port),
    useSSL: false,
    pathStyle: true,
    region: "us-east-1",
    accessKey: creds.accessKeyId,
    secretKey: creds.secretAccessKey,
  });
});

afterAll(async () => {
  client?.destroy();
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function text(key: string): Promise<string | undefined> {
  try {
    return await (await client.send(new GetObjectCommand({ Bucket: stack.config.S3_BUCKET, Key: key }))).Body!.transformToString();
  } catch {
    return undefined;
  }
}

describe("`pnpm start` in serverless mode", () => {
  it("an object copied to s3://barge/inbox/ gives results/<name>/output.jsonl with every line in order", async () => {
    expect(stack.config.TRIGGER_POLL_SECONDS).toBe(2);
    const input = readFileSync("examples/chat.jsonl", "utf8");
    const ids = input.trim().split("\n").map((l) => JSON.parse(l).custom_id as string);
    await client.send(new PutObjectCommand({ Bucket: stack.config.S3_BUCKET, Key: "inbox/x.jsonl", Body: input }));
    const output = await eventually("results/x/output.jsonl", () => text("results/x/output.jsonl"));
    expect(output.trim().split("\n").map((l) => JSON.parse(l).custom_id)).toEqual(ids);
    const status = await eventually("a completed status.json", async () => {
      const s = JSON.parse((await text("results/x/status.json")) ?? "{}");
      return s.status === "completed" ? s : undefined;
    });
    expect([status.metadata.source, status.metadata.input_key, status.request_counts.completed]).toEqual(["s3", "inbox/x.jsonl", ids.length]);
  });

  it("works the same through MinIO's client: its upload runs, its listing and download see the results", async () => {
    const input = readFileSync("examples/chat.jsonl");
    const ids = input.toString("utf8").trim().split("\n").map((l) => JSON.parse(l).custom_id as string);
    const bucket = stack.config.S3_BUCKET;
    await minio.putObject(bucket, "inbox/team/y.jsonl", input, input.length, { "Content-Type": "application/jsonl" });
    const names = await eventually("results/team/y/ with its output and a final status", async () => {
      const listed: string[] = [];
      for await (const o of minio.listObjectsV2(bucket, "results/team/y/", true)) if (o.name) listed.push(o.name);
      const status = listed.includes("results/team/y/status.json") ? JSON.parse((await text("results/team/y/status.json")) ?? "{}") : {};
      return status.status === "completed" ? listed.sort() : undefined;
    });
    expect(names).toEqual(["results/team/y/manifest.json", "results/team/y/output.jsonl", "results/team/y/status.json"]);
    const chunks: Buffer[] = [];
    for await (const chunk of await minio.getObject(bucket, "results/team/y/output.jsonl")) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString("utf8").trim().split("\n").map((l) => JSON.parse(l).custom_id)).toEqual(ids);
  });
});

import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createS3Client } from "@barge/core";
import { startEmbeddedS3 } from "@barge/devstack";
import type { S3Info } from "./provided.js";

/** A running (or external) S3 server for one project, and how to let go of it. */
export interface S3Server {
  info: S3Info;
  stop(): Promise<void>;
}

/** The bucket suites reading `S3_BUCKET` from the environment use (the stitcher's unit tests). */
export const SHARED_BUCKET = "barge-test";

/** Creates a bucket unless the caller already owns it. */
export async function ensureBucket(info: Omit<S3Info, "bucket">, bucket: string): Promise<void> {
  const s3 = createS3Client({ ...info, forcePathStyle: true });
  try {
    await s3.send(
      new CreateBucketCommand({
        Bucket: bucket,
        // Outside us-east-1, AWS wants the region spelled out again.
        ...(info.region === "us-east-1" ? {} : { CreateBucketConfiguration: { LocationConstraint: info.region as never } }),
      }),
    );
  } catch (err) {
    if ((err as { name?: string }).name !== "BucketAlreadyOwnedByYou") throw err;
  } finally {
    s3.destroy();
  }
}

/** An S3 server named by env vars `<prefix>ENDPOINT`, `<prefix>REGION`, `<prefix>ACCESS_KEY_ID`, ... */
export async function externalS3(env: NodeJS.ProcessEnv, prefix: string): Promise<S3Server> {
  const base = {
    endpoint: env[`${prefix}ENDPOINT`] ?? "",
    region: env[`${prefix}REGION`] ?? "us-east-1",
    accessKeyId: env[`${prefix}ACCESS_KEY_ID`] ?? "",
    secretAccessKey: env[`${prefix}SECRET_ACCESS_KEY`] ?? "",
    kind: "external" as const,
  };
  const bucket = env[`${prefix}BUCKET`] ?? SHARED_BUCKET;
  await ensureBucket(base, bucket);
  return { info: { ...base, bucket }, stop: async () => {} };
}

/** s3rver in this process, objects in a temporary directory. */
export async function embeddedS3rver(): Promise<S3Server> {
  const dir = mkdtempSync(join(tmpdir(), "barge-test-s3-"));
  const s3 = await startEmbeddedS3(dir, [SHARED_BUCKET]);
  return {
    info: {
      endpoint: s3.endpoint,
      region: "us-east-1",
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      kind: "s3rver",
      bucket: SHARED_BUCKET,
    },
    async stop() {
      await s3.stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

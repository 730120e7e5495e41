import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
} from "@aws-sdk/client-s3";
import { randomBytes } from "node:crypto";
import { inject } from "vitest";
import { createDb, createLogger, createS3Client, loadConfig, migrate, type Bucket, type Config, type Db } from "@barge/core";
import type { S3Kind } from "./provided.js";

/** Everything one test suite needs: its own Postgres schema and S3 bucket on the shared servers. */
export interface TestContext extends Bucket {
  db: Db;
  config: Config;
  /** Env for child processes (agent, API) pointed at this suite's schema and bucket. */
  env: Record<string, string>;
  /** Which S3 implementation this project runs on (see `test/support/provided.ts`). */
  s3Kind: S3Kind;
  close(): Promise<void>;
}

/** Creates an isolated schema and bucket (pg-boss style), migrated and empty. */
export async function createTestContext(overrides: Record<string, string> = {}): Promise<TestContext> {
  const id = randomBytes(5).toString("hex");
  const schema = `t_${id}`;
  const bucket = `barge-t-${id}`;
  const s3info = inject("s3");
  const env: Record<string, string> = {
    DATABASE_URL: inject("databaseUrl"),
    DATABASE_SCHEMA: schema,
    S3_ENDPOINT: s3info.endpoint,
    S3_REGION: s3info.region,
    S3_ACCESS_KEY_ID: s3info.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3info.secretAccessKey,
    S3_BUCKET: bucket,
    S3_FORCE_PATH_STYLE: "true",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    // Suites create batches and files faster than a team would; the limits' own suites set them.
    TENANT_BATCH_CREATES_PER_MINUTE: "1000000",
    TENANT_FILE_UPLOADS_PER_MINUTE: "1000000",
    ...overrides,
  };
  const config = loadConfig(env);
  const db = createDb({ url: env.DATABASE_URL!, schema });
  await migrate(db, schema);
  const s3 = createS3Client({
    endpoint: config.S3_ENDPOINT,
    region: config.S3_REGION,
    accessKeyId: config.S3_ACCESS_KEY_ID,
    secretAccessKey: config.S3_SECRET_ACCESS_KEY,
    forcePathStyle: true,
  });
  await s3.send(
    new CreateBucketCommand({
      Bucket: bucket,
      // Outside us-east-1, AWS wants the region spelled out again.
      ...(config.S3_REGION === "us-east-1" ? {} : { CreateBucketConfiguration: { LocationConstraint: config.S3_REGION as never } }),
    }),
  );
  return {
    db,
    s3,
    bucket,
    config,
    env,
    s3Kind: s3info.kind,
    async close() {
      await emptyBucket(s3, bucket).catch(() => {});
      await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
      s3.destroy();
      await db.destroy();
    },
  };
}

async function emptyBucket(s3: Bucket["s3"], bucket: string): Promise<void> {
  // Real S3 keeps a bucket with unfinished multipart uploads from being deleted (s3rver has none to list).
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket })).catch(() => undefined);
  for (const u of uploads?.Uploads ?? []) {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId })).catch(() => {});
  }
  for (;;) {
    const list = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    const objects = (list.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (objects.length === 0) return;
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects } }));
  }
}

/** A quiet logger for in-process services under test. */
export const testLog = createLogger("test", process.env.TEST_LOG_LEVEL ?? "silent");

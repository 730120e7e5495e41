import { join, resolve } from "node:path";
import type { Config } from "@barge/core";
import { readS3Credentials, s3CredentialsFile } from "@barge/devstack";

/**
 * `barge s3-env`: the embedded S3's credentials as shell exports for the `aws` CLI and the SDKs,
 * read from the data directory (no stack needs to run). Use as `eval "$(pnpm -s barge s3-env)"`.
 */
export function s3Env(config: Pick<Config, "BARGE_DATA_DIR" | "S3_REGION">): string {
  const file = s3CredentialsFile(join(resolve(config.BARGE_DATA_DIR), "s3"));
  const c = readS3Credentials(file);
  return [
    `# embedded S3 credentials from ${file}`,
    `export AWS_ACCESS_KEY_ID=${c.accessKeyId}`,
    `export AWS_SECRET_ACCESS_KEY=${c.secretAccessKey}`,
    `export AWS_DEFAULT_REGION=${config.S3_REGION}`,
  ].join("\n");
}

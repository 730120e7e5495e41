import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { ROOT } from "./env.js";
import type { Scope } from "./procs.js";

const run = promisify(execFile);
const SCRIPT = resolve(ROOT, "infra/rgw/rgw.sh");

/** Where a running S3 server is and how to sign for it. */
export interface S3Endpoint {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
}

/**
 * Starts a throwaway Ceph RGW with `infra/rgw/rgw.sh start <dir>` (dir must be empty) and
 * registers `rgw.sh stop <dir>`, which stops its daemons by PID, on the scope.
 */
export async function startRgw(scope: Scope, dir: string): Promise<S3Endpoint> {
  scope.add("rgw", () => run("bash", [SCRIPT, "stop", dir], { timeout: 60_000 }));
  const { stdout } = await run("bash", [SCRIPT, "start", dir], { timeout: 10 * 60_000, maxBuffer: 1 << 20 });
  const env: Record<string, string> = {};
  for (const line of readFileSync(stdout.trim(), "utf8").split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] && m[2] !== undefined) env[m[1]] = m[2];
  }
  if (!env.S3_ENDPOINT || !env.S3_ACCESS_KEY_ID || !env.S3_SECRET_ACCESS_KEY) throw new Error(`rgw.sh wrote an incomplete env in ${dir}`);
  return {
    endpoint: env.S3_ENDPOINT,
    region: env.S3_REGION ?? "us-east-1",
    accessKeyId: env.S3_ACCESS_KEY_ID,
    secretAccessKey: env.S3_SECRET_ACCESS_KEY,
    bucket: env.S3_BUCKET ?? "barge-test",
  };
}

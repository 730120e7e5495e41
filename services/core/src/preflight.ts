// What a process checks before it serves: that Postgres and the bucket answer, and if not, why.
// The API, the agent and the embedded stack share it, so a failure reads the same everywhere.
import { setTimeout as sleep } from "node:timers/promises";
import type { S3Client } from "@aws-sdk/client-s3";
import { backoffDelay, type Backoff } from "./backoff.js";
import type { Config } from "./config.js";
import { checkDatabase } from "./db/check-database.js";
import type { Db } from "./db/connect.js";
import type { Logger } from "./log.js";
import { checkBucket } from "./storage/probe-bucket.js";

/** One dependency's answer: fine, or what is wrong and whether waiting can fix it. */
export type CheckResult = { ok: true; note?: string } | { ok: false; retry: boolean; reason: string };

/** A named start-up check, such as "Postgres" or "S3". */
export interface DependencyCheck {
  name: string;
  run(): Promise<CheckResult>;
}

/** A start-up failure no retry can fix (a wrong password, a missing bucket, an open bind): its message is the whole story. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StartupError";
  }
}

/** The retries' spacing: quick at first for a dependency starting beside us, then every 10 s. */
const WAIT_BACKOFF: Backoff = { base: 500, cap: 10_000 };

/**
 * Runs the checks in order until all pass. An outage (nothing listening, a timeout, a server
 * starting up) is retried with backoff and logged as one line, and `onWaiting` hears the reason
 * (the API serves it from /readyz meanwhile); a setting that is wrong throws StartupError at once.
 * Resolves false if `signal` aborts the wait.
 */
export async function waitForDependencies(opts: {
  checks: DependencyCheck[];
  log: Logger;
  signal?: AbortSignal;
  onWaiting?: (reason: string) => void;
  backoff?: Backoff;
}): Promise<boolean> {
  const backoff = opts.backoff ?? WAIT_BACKOFF;
  for (let attempt = 1; !opts.signal?.aborted; attempt++) {
    const failed = await firstFailure(opts.checks, opts.log);
    if (failed === undefined) return true;
    if (!failed.retry) throw new StartupError(failed.reason);
    const waitMs = backoffDelay(attempt, backoff);
    opts.onWaiting?.(failed.reason);
    opts.log.warn({ attempt, retryInMs: waitMs }, `waiting: ${failed.reason}; retrying in ${(waitMs / 1000).toFixed(1)} s`);
    await sleep(waitMs, undefined, opts.signal ? { signal: opts.signal } : {}).catch(() => undefined);
  }
  return false;
}

async function firstFailure(checks: DependencyCheck[], log: Logger): Promise<{ retry: boolean; reason: string } | undefined> {
  for (const check of checks) {
    const result = await check.run();
    if (!result.ok) return result;
    if (result.note) log.info(result.note);
  }
  return undefined;
}

/** A one-line account of anything thrown, never a stack. */
export function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message || err.name : typeof err === "string" ? err : JSON.stringify(err) ?? String(err);
  // "invalid configuration:\n  A: …\n  B: …" reads "invalid configuration: A: …; B: …".
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .join("; ")
    .replace(/:; /g, ": ");
}

/** How long one start-up check may take before it counts as no answer. */
const CHECK_TIMEOUT_MS = 5_000;

/** The checks every process runs before it serves: Postgres answers, then the bucket is there and takes Barge's credentials. */
export function startupChecks(deps: { db: Db; s3: S3Client; bucket: string; config: Pick<Config, "S3_REGION" | "S3_CREATE_BUCKET"> }): DependencyCheck[] {
  return [
    { name: "Postgres", run: () => checkDatabase(deps.db, CHECK_TIMEOUT_MS) },
    { name: "S3", run: () => checkBucket({ s3: deps.s3, bucket: deps.bucket, region: deps.config.S3_REGION }, { create: deps.config.S3_CREATE_BUCKET, timeoutMs: CHECK_TIMEOUT_MS }) },
  ];
}

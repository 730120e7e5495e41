import { HeadBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { createDb } from "@barge/core";
import { startStack } from "@barge/devstack";
import { afterEach, describe, expect, inject, it } from "vitest";
import { eventually } from "../support/processes.js";

// `pnpm start` (`barge dev`) at start: the banner's curl lines with a key, its PostgreSQL's fsync,
// and an external S3's bucket, created only when S3_CREATE_BUCKET=true asks. The demo's and the
// tests' PostgreSQL keep fsync off: their data is thrown away.
const s3 = inject("s3");
const running: { proc: ChildProcess; exited: Promise<number | null> }[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const r of running.splice(0)) {
    if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill("SIGKILL");
    await r.exited;
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "barge-stack-startup-"));
  dirs.push(d);
  return d;
}

/** `barge dev` in a clean env (plus `env`), on a free API port; stdout and stderr together. */
function startDev(env: Record<string, string>) {
  const base = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", BARGE_DATA_DIR: tempDir(), API_PORT: "0", LOG_LEVEL: "warn", NODE_NO_WARNINGS: "1" };
  const proc = spawn(process.execPath, ["--import", "tsx", "services/cli/src/main.ts", "dev"], { env: { ...base, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  running.push({ proc, exited });
  return { proc, exited, output: () => out };
}

async function showFsync(url: string): Promise<string> {
  const db = createDb({ url, maxConnections: 1 });
  try {
    return (await sql<{ fsync: string }>`SHOW fsync`.execute(db)).rows[0]!.fsync;
  } finally {
    await db.destroy();
  }
}

const externalS3 = { S3_ENDPOINT: s3.endpoint, S3_REGION: s3.region, S3_ACCESS_KEY_ID: s3.accessKeyId, S3_SECRET_ACCESS_KEY: s3.secretAccessKey };

describe("pnpm start at start-up", () => {
  it("with a key and an external S3 asked to create its bucket: curl lines name $BARGE_API_KEY (never the key), the bucket is made, PostgreSQL fsyncs", async () => {
    const key = `sk-${randomBytes(12).toString("hex")}`;
    const bucket = `barge-start-${randomBytes(4).toString("hex")}`;
    const dev = startDev({ ...externalS3, S3_BUCKET: bucket, S3_CREATE_BUCKET: "true", BARGE_API_KEY: key });
    const banner = await Promise.race([
      eventually("the banner", async () => (dev.output().includes("or with the CLI:") ? dev.output() : undefined), 60_000),
      dev.exited.then((code) => {
        throw new Error(`barge dev exited ${code} before it was up:\n${dev.output()}`);
      }),
    ]);
    const api = /API\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(banner)![1]!;
    const auth = '-H "Authorization: Bearer $BARGE_API_KEY"';
    expect(banner).toContain(`curl -s ${api}/v1/files ${auth} -F purpose=batch -F file=@examples/chat.jsonl`);
    expect(banner).toContain(`curl -s ${api}/v1/batches ${auth} -H 'content-type: application/json'`);
    expect(banner).toContain(`curl -s ${api}/v1/batches/<batch id> ${auth}`);
    expect(banner).toContain(`curl -s ${api}/v1/batches ${auth} -F file=@examples/chat.jsonl -F model=barge-sim-1`);
    expect(banner.split(auth)).toHaveLength(5);
    expect(banner).not.toContain(key);
    // The header works as printed once the shell has expanded it.
    expect((await fetch(`${api}/v1/files`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    expect((await fetch(`${api}/v1/files`)).status).toBe(401);

    const client = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
    client.destroy();

    const pgUrl = /Postgres\s+embedded (postgres:\/\/\S+)/.exec(banner)![1]!;
    expect(await showFsync(pgUrl)).toBe("on");
    dev.proc.kill("SIGINT");
    expect(await dev.exited).toBe(0);
  });

  it("an external S3 whose bucket does not exist: exits 1 naming the bucket and S3_CREATE_BUCKET", async () => {
    const bucket = `barge-nothere-${randomBytes(4).toString("hex")}`;
    const schema = `t_start_${randomBytes(4).toString("hex")}`;
    const dev = startDev({ ...externalS3, S3_BUCKET: bucket, DATABASE_URL: inject("databaseUrl"), DATABASE_SCHEMA: schema });
    expect(await dev.exited, dev.output()).toBe(1);
    expect(dev.output()).toContain(`error: the S3 bucket '${bucket}' does not exist (NoSuchBucket): create it, or set S3_CREATE_BUCKET=true to let Barge create it\n`);
    expect(dev.output()).not.toMatch(/^\s+at /m);
  });

  it("the demo's stack and the tests' PostgreSQL run with fsync off", async () => {
    // As `pnpm demo` starts it: no `durable`.
    const stack = await startStack({ env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", LOG_LEVEL: "silent" }, dataDir: tempDir(), anyPort: true });
    try {
      expect(await showFsync(stack.config.DATABASE_URL!)).toBe("off");
    } finally {
      await stack.stop();
    }
    // The suites' own server, unless DATABASE_URL named another one.
    if (!process.env.DATABASE_URL) expect(await showFsync(inject("databaseUrl"))).toBe("off");
  });
});

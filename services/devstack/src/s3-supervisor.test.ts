import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./ports.js";
import { startSupervisedS3, type SupervisedS3, type SupervisorLog } from "./s3-supervisor.js";
import { processAlive as alive } from "./processes.js";

const BUCKET = "sup";
const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
const record = (level: string) => (obj: Record<string, unknown>, msg: string) => void lines.push({ level, obj, msg });
const log = { error: record("error"), warn: record("warn") } as unknown as SupervisorLog;
let dir: string;
let s3: SupervisedS3;
let client: S3Client;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "barge-s3-sup-"));
  s3 = await startSupervisedS3(dir, [BUCKET], { log, backoff: { firstMs: 50 } });
  client = new S3Client({
    endpoint: s3.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    maxAttempts: 1,
  });
});

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function until<T>(what: string, probe: () => T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function read(Key: string): Promise<string> {
  return (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key }))).Body!.transformToString();
}

describe("embedded S3 in a supervised child process", () => {
  it("serves from a child, not from this process", async () => {
    const pid = s3.pid()!;
    expect(pid).not.toBe(process.pid);
    expect(alive(pid)).toBe(true);
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "before.txt", Body: "kept across restarts" }));
    expect(await read("before.txt")).toBe("kept across restarts");
  });

  it("restarts a SIGKILLed child on the same port and directory, and logs why", async () => {
    const first = s3.pid()!;
    const endpoint = s3.endpoint;
    process.kill(first, "SIGKILL");
    const second = await until("a new child", () => {
      const p = s3.pid();
      return p !== undefined && p !== first && s3.restarts() === 1 ? p : undefined;
    });
    expect(alive(first)).toBe(false);
    expect(s3.endpoint).toBe(endpoint);
    const exit = lines.find((l) => l.level === "error");
    expect(exit?.msg).toBe("embedded S3 exited (signal SIGKILL); restarting");
    expect(exit?.obj).toMatchObject({ pid: first, signal: "SIGKILL", code: null });
    expect(lines.find((l) => l.level === "warn")?.msg).toBe("embedded S3 restarted");
    expect(await read("before.txt")).toBe("kept across restarts");
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "after.txt", Body: "new" }));
    expect(await read("after.txt")).toBe("new");
    expect(alive(second)).toBe(true);
  });

  it("stopping stops the child by its PID and does not restart it", async () => {
    const pid = s3.pid()!;
    const errorsBefore = lines.filter((l) => l.level === "error").length;
    await s3.stop();
    expect(alive(pid)).toBe(false);
    await new Promise((r) => setTimeout(r, 300));
    expect(s3.pid()).toBeUndefined();
    expect(s3.restarts()).toBe(1);
    expect(lines.filter((l) => l.level === "error").length).toBe(errorsBefore);
  });

  it("a child that cannot start fails the start with what it wrote", async () => {
    const port = await freePort();
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(port, "127.0.0.1", r));
    try {
      const err = await startSupervisedS3(join(dir, "other"), [BUCKET], { log, port }).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/^embedded S3 exited \(code 1\) before it was ready; it said:\n/);
      expect((err as Error).message).toContain(`embedded S3 could not start: listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });
});

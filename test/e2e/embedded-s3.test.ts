import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { processAlive as alive, startStack, type Stack } from "@barge/devstack";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/processes.js";

// The embedded stack as `pnpm start` builds it (its own PostgreSQL, S3 child and engine-sim), in
// this process, so the test can see the S3 child's PID the stack reports.
const dataDir = mkdtempSync(join(tmpdir(), "barge-embedded-s3-"));
const input = readFileSync("examples/chat.jsonl", "utf8").trim().split("\n").map((l) => JSON.parse(l).custom_id as string);
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", LOG_LEVEL: "silent" },
    dataDir,
    anyPort: true,
  });
});

afterAll(async () => {
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Submits examples/chat.jsonl in one step and returns the custom_ids of its completed output. */
async function runBatch(): Promise<string[]> {
  const form = new FormData();
  form.set("file", new Blob([readFileSync("examples/chat.jsonl")]), "chat.jsonl");
  form.set("model", "barge-sim-1");
  const res = await fetch(`${stack.apiUrl}/v1/batches`, { method: "POST", body: form });
  expect(res.status).toBe(200);
  const { id } = (await res.json()) as { id: string };
  const batch = await eventually(`batch ${id} completed`, async () => {
    const b = (await (await fetch(`${stack.apiUrl}/v1/batches/${id}`)).json()) as Record<string, any>;
    return b.status === "completed" ? b : undefined;
  });
  const out = await fetch(`${stack.apiUrl}/v1/files/${batch.output_file_id}/content`);
  expect(out.status).toBe(200);
  return (await out.text()).trim().split("\n").map((l) => JSON.parse(l).custom_id as string);
}

describe("the embedded S3 of `pnpm start`", () => {
  it("runs in a child process: the unsigned dicer payload gets 403 and the stack still serves and runs a batch", async () => {
    expect(stack.embedded.s3).toBe(true);
    const pid = stack.s3Pid()!;
    expect(pid).not.toBe(process.pid);
    const boundary = "----WebKitFormBoundaryoo6vortfDzBsDiro";
    const res = await fetch(`${stack.s3Endpoint}/${stack.config.S3_BUCKET}`, {
      method: "POST",
      headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
      body: `--${boundary}\r\n Content-Disposition: form-data; name="bildbeschreibung"\r\n\r\n\r\n--${boundary}--`,
    });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("<Code>AccessDenied</Code>");
    expect((await fetch(`${stack.apiUrl}/health`)).status).toBe(200);
    expect(stack.s3Pid()).toBe(pid);
    expect((await runBatch()).sort()).toEqual([...input].sort());
  });

  it("restarts a SIGKILLed S3 child; a batch created afterwards completes with its output intact", async () => {
    const first = stack.s3Pid()!;
    process.kill(first, "SIGKILL");
    const second = await eventually("a new S3 child", async () => {
      const p = stack.s3Pid();
      return p !== undefined && p !== first ? p : undefined;
    });
    expect(alive(first)).toBe(false);
    expect((await fetch(`${stack.apiUrl}/health`)).status).toBe(200);
    expect((await runBatch()).sort()).toEqual([...input].sort());
    expect(stack.s3Pid()).toBe(second);
  });

  it("passes its generated credentials to the API and agent; `barge s3-env` prints them for other clients", async () => {
    const file = join(dataDir, "s3", "credentials.json");
    expect(stack.s3CredentialsFile).toBe(file);
    const saved = JSON.parse(readFileSync(file, "utf8")) as { accessKeyId: string; secretAccessKey: string };
    expect(stack.config.S3_ACCESS_KEY_ID).toBe(saved.accessKeyId);
    expect(stack.config.S3_SECRET_ACCESS_KEY).toBe(saved.secretAccessKey);
    const env = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", BARGE_DATA_DIR: dataDir };
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "services/cli/src/main.ts", "s3-env"], { env });
    expect(stdout).toBe(
      `# embedded S3 credentials from ${file}\nexport AWS_ACCESS_KEY_ID=${saved.accessKeyId}\nexport AWS_SECRET_ACCESS_KEY=${saved.secretAccessKey}\nexport AWS_DEFAULT_REGION=us-east-1\n`,
    );
    const exported = Object.fromEntries([...stdout.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1], m[2]]));
    const client = new S3Client({
      endpoint: stack.s3Endpoint,
      region: exported.AWS_DEFAULT_REGION!,
      forcePathStyle: true,
      credentials: { accessKeyId: exported.AWS_ACCESS_KEY_ID!, secretAccessKey: exported.AWS_SECRET_ACCESS_KEY! },
    });
    const listed = await client.send(new ListObjectsV2Command({ Bucket: stack.config.S3_BUCKET, Prefix: "outputs/" }));
    client.destroy();
    expect(listed.KeyCount).toBeGreaterThan(0);
    expect((await fetch(`${stack.s3Endpoint}/${stack.config.S3_BUCKET}?list-type=2`)).status).toBe(403);
  });

  it("stopping the stack stops the S3 child", async () => {
    const pid = stack.s3Pid()!;
    await stack.stop();
    expect(alive(pid)).toBe(false);
    expect(stack.s3Pid()).toBeUndefined();
  });
});

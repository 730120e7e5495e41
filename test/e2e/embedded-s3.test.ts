import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

  it("stopping the stack stops the S3 child", async () => {
    const pid = stack.s3Pid()!;
    await stack.stop();
    expect(alive(pid)).toBe(false);
    expect(stack.s3Pid()).toBeUndefined();
  });
});

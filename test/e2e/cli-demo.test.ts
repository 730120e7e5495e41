import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const dataDir = mkdtempSync(join(tmpdir(), "barge-demo-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe("pnpm demo", () => {
  it("runs examples/chat.jsonl through a whole embedded stack, downloads the results and exits 0", async () => {
    // A clean env: the demo must start every part itself.
    const env: Record<string, string> = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", BARGE_DATA_DIR: dataDir };
    const { stdout } = await run(process.execPath, ["--import", "tsx", "services/cli/src/main.ts", "demo"], { env, timeout: 120_000 });
    const input = readFileSync("examples/chat.jsonl", "utf8").trim().split("\n").map((l) => JSON.parse(l).custom_id);
    const output = readFileSync(join(dataDir, "demo", "output.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(output.map((l) => l.custom_id)).toEqual(input);
    expect(output.every((l) => l.response.status_code === 200 && l.response.body.system_fingerprint === "barge-engine-sim")).toBe(true);

    const batchId = /created (batch_\w+)/.exec(stdout)?.[1];
    expect(batchId).toBeDefined();
    expect(stdout).toContain(`completed: 24 completed, 0 failed of 24`);
    expect(stdout).toContain(`result object: s3://barge/outputs/default/${batchId}/output.jsonl`);
    expect(stdout).toMatch(/presigned GET: http:\/\/127\.0\.0\.1:\d+\/barge\/outputs\/default\/batch_\w+\/output\.jsonl\?X-Amz-/);
    expect(stdout).toContain("stopped the embedded stack");
  });
});

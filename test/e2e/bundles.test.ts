import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DASHBOARD_ASSETS } from "@barge/dashboard";
import { freePort } from "@barge/devstack";
import { buildServices } from "../../infra/build.js";
import { createTestContext, type TestContext } from "../support/context.js";
import { Children, eventually, simReady } from "../support/processes.js";

// The production bundles (`pnpm build`, what the Dockerfile runs) are separate artefacts from the
// TypeScript the rest of the suite runs through tsx: this runs a batch through them alone.

const INPUT = "examples/chat.jsonl";
const inputIds = readFileSync(INPUT, "utf8").trim().split("\n").map((l) => (JSON.parse(l) as { custom_id: string }).custom_id);
const outDir = mkdtempSync(join(tmpdir(), "barge-dist-"));
const children = new Children();
let ctx: TestContext;
let bundles: Awaited<ReturnType<typeof buildServices>>;

beforeAll(async () => {
  bundles = await buildServices(outDir);
  ctx = await createTestContext({ CHUNK_SIZE: "10", SEGMENT_MAX_LINES: "4", AGENT_POLL_MS: "50", API_POLL_MS: "50" });
});
afterAll(async () => {
  await children.stopAll();
  await ctx?.close();
  rmSync(outDir, { recursive: true, force: true });
});

describe("production bundles", () => {
  it("engine-sim, API and agent bundles run a batch to completed with results in input order", async () => {
    const simPort = await freePort();
    const sim = children.start(bundles["engine-sim"], ["serve", "barge-sim-1", "--port", String(simPort)], {});
    await simReady(`http://127.0.0.1:${simPort}`);
    const apiPort = await freePort();
    const api = children.start(bundles.api, [], { ...ctx.env, API_HOST: "127.0.0.1", API_PORT: String(apiPort) });
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    await eventually("the API bundle to answer /health", async () => (await fetch(`${apiUrl}/health`)).ok, 30_000);
    // The dashboard is built into the bundle: its page and script, byte for byte the committed build.
    expect(await (await fetch(`${apiUrl}/`)).text()).toBe(DASHBOARD_ASSETS["index.html"]);
    expect(await (await fetch(`${apiUrl}/ui/app.js`)).text()).toBe(DASHBOARD_ASSETS["app.js"]);
    const agent = children.start(bundles.agent, [], { ...ctx.env, VLLM_URL: `http://127.0.0.1:${simPort}`, AGENT_ID: "bundle-agent" });

    const client = new OpenAI({ baseURL: `${apiUrl}/v1`, apiKey: "unused", maxRetries: 0 });
    const file = await client.files.create({ file: await toFile(readFileSync(INPUT), "chat.jsonl"), purpose: "batch" });
    const created = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const done = await eventually(
      "the batch to finish",
      async () => {
        const b = await client.batches.retrieve(created.id);
        return ["completed", "failed", "expired", "cancelled"].includes(b.status) ? b : undefined;
      },
      60_000,
    );
    expect(done.status, agent.stderr()).toBe("completed");
    expect(done.request_counts).toEqual({ total: inputIds.length, completed: inputIds.length, failed: 0 });
    const text = await (await client.files.content(done.output_file_id!)).text();
    const out = text.trim().split("\n").map((l) => JSON.parse(l) as { custom_id: string; response: { status_code: number; body: { system_fingerprint: string } } });
    expect(out.map((l) => l.custom_id)).toEqual(inputIds);
    expect(out.map((l) => l.response.status_code)).toEqual(inputIds.map(() => 200));
    expect(new Set(out.map((l) => l.response.body.system_fingerprint))).toEqual(new Set(["barge-engine-sim"]));
    const agentRow = await ctx.db.selectFrom("agents").select("models").where("id", "=", "bundle-agent").executeTakeFirstOrThrow();
    expect(agentRow.models).toEqual(["barge-sim-1"]);

    // Each bundle shuts down cleanly on SIGTERM.
    for (const child of [agent, api, sim]) {
      child.signal("SIGTERM");
      expect(await child.exited, child.stderr()).toBe(0);
    }
  });
});

import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgent, type Agent } from "@barge/agent";
import { createEngineSim, type EngineSim } from "@barge/engine-sim";
import type { ApiServer } from "@barge/api";
import { call, chatLine, jsonl, serveApi } from "../support/api-harness.js";
import { createTestContext, testLog, type TestContext } from "../support/context.js";
import { eventually } from "../support/processes.js";
import { suiteResources } from "../support/suite-resources.js";

// `barge watch` as a child process against the real API, agents and engine-sim in this process.
// Agents are per test, so a test can hold batches back while the watcher restarts.
const SETTLE_MS = 1500;

interface Watcher {
  proc: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

const watchers: Watcher[] = [];
const res = suiteResources(async () => {
  for (const w of watchers.splice(0)) {
    if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill("SIGKILL");
    await w.exited;
  }
});

let ctx: TestContext;
let sim: EngineSim;
let api: ApiServer;
let agents = 0;

beforeAll(async () => {
  ctx = await createTestContext({ AGENT_POLL_MS: "50", API_POLL_MS: "50" });
  sim = await createEngineSim({ models: ["barge-sim-1"] });
  api = await serveApi(ctx);
});
afterAll(async () => {
  await api?.close();
  await sim?.close();
  await ctx?.close();
});

async function startAgent(): Promise<Agent> {
  const agent = createAgent({ db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, config: ctx.config, log: testLog, engineUrl: sim.url, agentId: `watch-agent-${agents++}` });
  res.cleanup(() => agent.stop({ graceful: false }));
  await agent.start();
  return agent;
}

/** `barge watch <dir>` in a clean env; resolves once it has scanned the folder. */
async function startWatch(dir: string): Promise<Watcher> {
  const env = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", BARGE_API_URL: api.url };
  const args = ["--import", "tsx", "services/cli/src/main.ts", "watch", dir, "--settle-ms", String(SETTLE_MS), "--poll-ms", "100"];
  const proc = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const w = { proc, output: () => out, exited };
  watchers.push(w);
  await Promise.race([
    eventually("the watcher's banner", async () => out.includes(`watching ${dir}\n`), 30_000),
    exited.then((code) => {
      throw new Error(`barge watch exited ${code}:\n${out}`);
    }),
  ]);
  return w;
}

async function stopWatch(w: Watcher, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  process.kill(w.proc.pid!, signal);
  expect(await w.exited).toBe(0);
  expect(w.output()).toContain("stopped watching");
}

const line = (id: string, content?: string) => chatLine(id, { model: "barge-sim-1", ...(content ? { body: { messages: [{ role: "user", content }] } } : {}) });
const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

function linesOf(path: string): Record<string, any>[] {
  return readFileSync(path, "utf8").trim().split("\n").map((l) => JSON.parse(l));
}

async function fileAppears(path: string): Promise<Record<string, any>[]> {
  await eventually(path, async () => existsSync(path), 30_000);
  return linesOf(path);
}

async function batches(): Promise<Record<string, any>[]> {
  const r = await call(api.url, "/v1/batches?limit=100");
  expect(r.status).toBe(200);
  return r.body.data;
}

function state(dir: string): Record<string, { batch_id: string | null; phase: string; status: string | null }> {
  return JSON.parse(readFileSync(join(dir, ".barge-watch.json"), "utf8")).files;
}

describe("barge watch <dir>", () => {
  it("runs files already there and dropped in; results land beside them, failures in x.errors.jsonl, bad lines named", async () => {
    await startAgent();
    const dir = res.tempDir("barge-watch-");
    const before = (await batches()).length;
    writeFileSync(join(dir, "a.jsonl"), jsonl(ids("a", 5).map((id) => line(id))));
    const w = await startWatch(dir);
    writeFileSync(join(dir, "b.jsonl"), jsonl([line("b-0"), line("b-1", "please __sim_fail_400__"), line("b-2")]));
    writeFileSync(join(dir, "v.jsonl"), jsonl([line("v-0"), "{not json", line("v-2")]));
    writeFileSync(join(dir, "mix.jsonl"), jsonl([line("m-0"), chatLine("m-1", { model: "barge-sim-1", url: "/v1/embeddings" })]));
    writeFileSync(join(dir, "notes.txt"), "not an input\n");

    expect((await fileAppears(join(dir, "a.output.jsonl"))).map((l) => l.custom_id)).toEqual(ids("a", 5));
    const bOut = await fileAppears(join(dir, "b.output.jsonl"));
    expect(bOut.map((l) => l.custom_id)).toEqual(["b-0", "b-2"]);
    const bErr = await fileAppears(join(dir, "b.errors.jsonl"));
    expect(bErr.map((l) => [l.custom_id, l.response.status_code])).toEqual([["b-1", 400]]);
    // The result files appear before the watcher reports writing them: wait for its words too.
    const said = (s: string) => w.output().includes(s);
    await eventually("the watcher's verdicts", async () => said("v.jsonl: refused") && said("mix.jsonl: refused") && said("b.jsonl: completed, wrote"), 30_000).catch((err) => {
      throw new Error(`${err.message}; the watcher said:\n${w.output()}`);
    });

    const out = w.output();
    expect(out).toContain("a.jsonl: completed 5/5\n");
    expect(out).toContain("a.jsonl: completed, wrote a.output.jsonl\n");
    expect(out).toContain("b.jsonl: completed 3/3 (1 failed)\n");
    expect(out).toContain("b.jsonl: completed, wrote b.output.jsonl and b.errors.jsonl\n");
    expect(out).toContain("v.jsonl: refused: 400 Line 2: This line is not parseable as valid JSON. (invalid_json_line)\n");
    // Refused when creating the batch, after its upload: the API checks each line's url against the first's.
    expect(out).toContain("mix.jsonl: refused: 400 Line 2: The url '/v1/embeddings' does not match the batch endpoint '/v1/chat/completions'. (url_mismatch)\n");
    expect(out).not.toContain("notes.txt");
    await stopWatch(w);

    // Two batches (the API refused v.jsonl and mix.jsonl), none for the outputs the watcher wrote; no temp file left behind.
    expect((await batches()).length).toBe(before + 2);
    expect(readdirSync(dir).sort()).toEqual([".barge-watch.json", "a.jsonl", "a.output.jsonl", "b.errors.jsonl", "b.jsonl", "b.output.jsonl", "mix.jsonl", "notes.txt", "v.jsonl"]);
    expect(Object.fromEntries(Object.entries(state(dir)).map(([k, v]) => [k, [v.phase, v.status]]))).toEqual({
      "a.jsonl": ["finished", "completed"],
      "b.jsonl": ["finished", "completed"],
      "mix.jsonl": ["refused", null],
      "v.jsonl": ["refused", null],
    });
  });

  it("restarts without resubmitting: a running batch is followed to its results, files added or changed while down are taken", async () => {
    const agent = await startAgent();
    const dir = res.tempDir("barge-watch-");
    const before = (await batches()).length;
    writeFileSync(join(dir, "done.jsonl"), jsonl(ids("done", 3).map((id) => line(id))));
    writeFileSync(join(dir, "changed.jsonl"), jsonl(ids("old", 2).map((id) => line(id))));
    const first = await startWatch(dir);
    await fileAppears(join(dir, "done.output.jsonl"));
    await fileAppears(join(dir, "changed.output.jsonl"));
    // No agent from here on: the next batch stays unfinished while the watcher is down.
    await agent.stop({ graceful: false });
    writeFileSync(join(dir, "running.jsonl"), jsonl(ids("run", 4).map((id) => line(id))));
    await eventually("running.jsonl's batch", async () => /running\.jsonl: created batch_/.test(first.output()), 30_000);
    await stopWatch(first, "SIGINT");
    const saved = state(dir);
    expect(saved["running.jsonl"]!.phase).toBe("submitted");
    expect(existsSync(join(dir, "running.output.jsonl"))).toBe(false);

    // While it is down: one new file, one file rewritten with new content.
    writeFileSync(join(dir, "late.jsonl"), jsonl(ids("late", 2).map((id) => line(id))));
    writeFileSync(join(dir, "changed.jsonl"), jsonl(ids("new", 3).map((id) => line(id))));
    await startAgent();
    const second = await startWatch(dir);
    expect((await fileAppears(join(dir, "running.output.jsonl"))).map((l) => l.custom_id)).toEqual(ids("run", 4));
    expect((await fileAppears(join(dir, "late.output.jsonl"))).map((l) => l.custom_id)).toEqual(ids("late", 2));
    await eventually("changed.jsonl's new results", async () => linesOf(join(dir, "changed.output.jsonl"))[0]!.custom_id === "new-0", 30_000);
    expect(linesOf(join(dir, "changed.output.jsonl")).map((l) => l.custom_id)).toEqual(ids("new", 3));
    await stopWatch(second);

    // done, changed (old), running; then late and changed (new): five, and running's kept its batch.
    const all = await batches();
    expect(all.length).toBe(before + 5);
    const after = state(dir);
    expect(after["running.jsonl"]).toMatchObject({ batch_id: saved["running.jsonl"]!.batch_id, phase: "finished", status: "completed" });
    expect(after["done.jsonl"]!.batch_id).toBe(saved["done.jsonl"]!.batch_id);
    expect(after["changed.jsonl"]!.batch_id).not.toBe(saved["changed.jsonl"]!.batch_id);
    const out = second.output();
    expect(out).toContain(`done.jsonl: completed earlier (${saved["done.jsonl"]!.batch_id}), nothing to do\n`);
    expect(out).not.toMatch(/(done|running)\.jsonl: created/);
    expect(out).toMatch(/late\.jsonl: created batch_/);
    expect(out).toMatch(/changed\.jsonl: created batch_/);
  });

  it("does not take a half-written file: one batch with every line once the writes settle", async () => {
    await startAgent();
    const dir = res.tempDir("barge-watch-");
    const before = (await batches()).length;
    const w = await startWatch(dir);
    const text = jsonl(ids("h", 6).map((id) => line(id)));
    // At a line boundary: the first part alone is a valid file of 3 lines, which must not run.
    const cut = text.indexOf('{"custom_id":"h-3"');
    writeFileSync(join(dir, "h.jsonl"), text.slice(0, cut));
    // Longer than the stability poll (100 ms), shorter than the threshold.
    await sleep(SETTLE_MS / 2);
    appendFileSync(join(dir, "h.jsonl"), text.slice(cut));
    expect((await fileAppears(join(dir, "h.output.jsonl"))).map((l) => l.custom_id)).toEqual(ids("h", 6));
    await stopWatch(w);
    const all = await batches();
    expect(all.slice(0, all.length - before).map((b) => b.request_counts.total)).toEqual([6]);
    expect(w.output().match(/h\.jsonl: created/g)).toHaveLength(1);
    expect(w.output()).not.toContain("refused");
  });

  it("refuses a folder that is not one, with its usage, exit 2", async () => {
    const env = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", BARGE_API_URL: api.url };
    const proc = spawn(process.execPath, ["--import", "tsx", "services/cli/src/main.ts", "watch", "/nonexistent/barge-watch"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    expect(await new Promise((resolve) => proc.once("exit", resolve))).toBe(2);
    expect(err).toContain("watch needs a directory; '/nonexistent/barge-watch' is not one\n\nusage: barge <command>");
  });

  it("records a batch the API does not know as done with, instead of polling it forever", async () => {
    const dir = res.tempDir("barge-watch-");
    const text = jsonl([line("g-0")]);
    writeFileSync(join(dir, "g.jsonl"), text);
    const sha256 = createHash("sha256").update(text).digest("hex");
    const files = { "g.jsonl": { sha256, size: Buffer.byteLength(text), batch_id: "batch_000000000000000000000000", phase: "submitted", status: "in_progress", message: null } };
    writeFileSync(join(dir, ".barge-watch.json"), JSON.stringify({ version: 1, files }));
    const before = (await batches()).length;
    const w = await startWatch(dir);
    await eventually("the verdict on the unknown batch", async () => w.output().includes("not followed any more"), 30_000);
    await stopWatch(w);
    expect(w.output()).toMatch(/g\.jsonl: batch_000000000000000000000000 is gone \(404 .*\); not followed any more\n/);
    expect(w.output().match(/g\.jsonl: /g)).toHaveLength(1);
    expect(state(dir)["g.jsonl"]).toMatchObject({ batch_id: "batch_000000000000000000000000", phase: "finished", status: null });
    expect((await batches()).length).toBe(before);
  });
});

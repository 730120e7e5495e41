import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DASHBOARD_ASSETS } from "@barge/dashboard";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { eventually } from "../support/processes.js";

// `pnpm start` as a user runs it (as root in CI), on one data directory across several runs.
const dataDir = mkdtempSync(join(tmpdir(), "barge-restart-"));
const pgDir = join(dataDir, "pg");
const input = readFileSync("examples/chat.jsonl", "utf8").trim().split("\n").map((l) => JSON.parse(l).custom_id as string);

interface StackProcess {
  proc: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

const running: StackProcess[] = [];
const sleepers: ChildProcess[] = [];

/** `barge dev` (what `pnpm start` runs) on `dataDir`, in a clean env, on a free API port. */
function startDev(): StackProcess {
  const env = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", BARGE_DATA_DIR: dataDir, API_PORT: "0", LOG_LEVEL: "warn" };
  const proc = spawn(process.execPath, ["--import", "tsx", "services/cli/src/main.ts", "dev"], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const s = { proc, output: () => out, exited };
  running.push(s);
  return s;
}

/** Waits for the banner and returns the API URL it prints; a stack that exits first fails the test. */
async function apiUrl(s: StackProcess): Promise<string> {
  const banner = eventually("the stack's banner", async () => /API\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(s.output())?.[1], 50_000);
  const exited = s.exited.then((code) => {
    throw new Error(`the stack exited ${code} before it was up:\n${s.output()}`);
  });
  return Promise.race([banner, exited]);
}

async function stopWithSigint(s: StackProcess): Promise<void> {
  s.proc.kill("SIGINT");
  expect(await s.exited).toBe(0);
}

/** The postmaster PID the data directory's lock file names, if it is a running process. */
function livePostmaster(): number | undefined {
  const file = join(pgDir, "postmaster.pid");
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").split("\n")[0]);
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

async function waitCompleted(url: string, id: string): Promise<Record<string, any>> {
  return eventually(`batch ${id} completed`, async () => {
    const b = (await (await fetch(`${url}/v1/batches/${id}`)).json()) as Record<string, any>;
    return b.status === "completed" ? b : undefined;
  });
}

async function outputIds(url: string, batch: Record<string, any>): Promise<string[]> {
  const res = await fetch(`${url}/v1/files/${batch.output_file_id}/content`);
  expect(res.status).toBe(200);
  return (await res.text()).trim().split("\n").map((l) => JSON.parse(l).custom_id as string);
}

let firstBatchId = "";

afterEach(async () => {
  for (const s of running.splice(0)) {
    if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill("SIGKILL");
    await s.exited;
  }
  for (const p of sleepers.splice(0)) p.kill("SIGKILL");
});

afterAll(async () => {
  // A stack this suite SIGKILLed may have left its PostgreSQL running; stop that one, by its PID.
  const pid = livePostmaster();
  if (pid !== undefined) {
    process.kill(pid, "SIGINT");
    await eventually("the leftover postmaster to stop", async () => livePostmaster() === undefined, 30_000);
  }
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(`${dataDir}.owner`, { force: true });
});

describe("pnpm start, again and again on one data directory", () => {
  it("restarts after Ctrl-C and finds the first run's batch completed with its output", async () => {
    const first = startDev();
    const url = await apiUrl(first);
    const form = new FormData();
    form.set("file", new Blob([readFileSync("examples/chat.jsonl")]), "chat.jsonl");
    form.set("model", "barge-sim-1");
    const created = (await (await fetch(`${url}/v1/batches`, { method: "POST", body: form })).json()) as { id: string };
    firstBatchId = created.id;
    expect(firstBatchId).toMatch(/^batch_/);
    await waitCompleted(url, firstBatchId);
    await stopWithSigint(first);
    expect(statSync(pgDir).mode & 0o777).toBe(0o700);

    const second = startDev();
    const url2 = await apiUrl(second);
    const batch = await waitCompleted(url2, firstBatchId);
    expect(batch.request_counts).toEqual({ total: 24, completed: 24, failed: 0 });
    expect(await outputIds(url2, batch)).toEqual(input);
    expect(statSync(pgDir).mode & 0o777).toBe(0o700);
    await stopWithSigint(second);
  });

  it("serves the dashboard at the URL its banner names", async () => {
    const s = startDev();
    const url = await apiUrl(s);
    expect(s.output()).toContain(`\n  Dashboard    ${url}/\n`);
    const page = await fetch(`${url}/`);
    expect([page.status, page.headers.get("content-type")]).toEqual([200, "text/html; charset=utf-8"]);
    expect(await page.text()).toBe(DASHBOARD_ASSETS["index.html"]);
    const app = await fetch(`${url}/ui/app.js`);
    expect([app.status, app.headers.get("content-type")]).toEqual([200, "text/javascript; charset=utf-8"]);
    expect(await app.text()).toBe(DASHBOARD_ASSETS["app.js"]);
    await stopWithSigint(s);
  });

  it("restarts after the stack was SIGKILLed, shutting down the PostgreSQL it left behind", async () => {
    const first = startDev();
    await apiUrl(first);
    const orphan = livePostmaster();
    expect(orphan).toBeDefined();
    first.proc.kill("SIGKILL");
    await first.exited;
    // SIGKILL reaches only the stack's own process: its postmaster lives on, holding the folder.
    expect(livePostmaster()).toBe(orphan);

    const second = startDev();
    const url = await apiUrl(second);
    expect(livePostmaster()).not.toBe(orphan);
    const batch = await waitCompleted(url, firstBatchId);
    expect(await outputIds(url, batch)).toEqual(input);
    await stopWithSigint(second);
    expect(livePostmaster()).toBeUndefined();
  });

  it("refuses a second stack on a folder a live stack holds, and says so", async () => {
    const first = startDev();
    await apiUrl(first);
    const postmaster = livePostmaster();
    const second = startDev();
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain(`embedded PostgreSQL failed to start (data directory ${pgDir})`);
    expect(second.output()).toContain(`another Barge stack (stack PID ${first.proc.pid}) is running on this folder; its PostgreSQL is PID ${postmaster}`);
    expect(second.output()).not.toContain("undefined");
    // The refused stack touched nothing: the first one still serves.
    const url = await apiUrl(first);
    expect((await fetch(`${url}/v1/batches/${firstBatchId}`)).status).toBe(200);
    await stopWithSigint(first);
  });

  it("starts over a stale postmaster.pid whose PID is a live process that is not postgres", async () => {
    const sleeper = spawn(process.execPath, ["-e", "setTimeout(() => {}, 120000)"], { stdio: "ignore" });
    sleepers.push(sleeper);
    writeFileSync(join(pgDir, "postmaster.pid"), `${sleeper.pid}\n${pgDir}\n1700000000\n5432\n`);
    const s = startDev();
    const url = await apiUrl(s);
    expect(livePostmaster()).not.toBe(sleeper.pid);
    expect((await waitCompleted(url, firstBatchId)).status).toBe("completed");
    await stopWithSigint(s);
  });

  it("repairs a data directory an earlier version left at 0701", async () => {
    chmodSync(pgDir, 0o701);
    const s = startDev();
    const url = await apiUrl(s);
    expect(statSync(pgDir).mode & 0o777).toBe(0o700);
    expect((await waitCompleted(url, firstBatchId)).status).toBe("completed");
    await stopWithSigint(s);
  });

  it("names the part that failed, its data directory and what it said, and exits 1", async () => {
    const version = readFileSync(join(pgDir, "PG_VERSION"), "utf8");
    writeFileSync(join(pgDir, "PG_VERSION"), "9\n");
    try {
      const s = startDev();
      expect(await s.exited).toBe(1);
      expect(s.output()).toContain(`error: embedded PostgreSQL failed to start (data directory ${pgDir})`);
      expect(s.output()).toMatch(/embedded PostgreSQL said:\n.*FATAL: {2}database files are incompatible with server/);
      expect(s.output()).not.toContain("undefined");
    } finally {
      writeFileSync(join(pgDir, "PG_VERSION"), version);
    }
  });

  it("names the embedded S3 server when it cannot start", async () => {
    const s3Dir = join(dataDir, "s3");
    rmSync(s3Dir, { recursive: true, force: true });
    writeFileSync(s3Dir, "not a directory");
    try {
      const s = startDev();
      expect(await s.exited).toBe(1);
      expect(s.output()).toContain(`error: embedded S3 (s3rver) failed to start (data directory ${s3Dir}): EEXIST`);
      expect(s.output()).not.toContain("undefined");
      // PostgreSQL had started before it; the failed stack stopped it again.
      expect(livePostmaster()).toBeUndefined();
    } finally {
      rmSync(s3Dir, { force: true });
    }
  });
});

import { execFileSync, spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import type { TestProject } from "vitest/node";
import type { S3Info } from "./provided.js";
import { embeddedS3rver, externalS3, type S3Server } from "./s3-servers.js";

const SCRIPT = resolve(import.meta.dirname, "../../infra/rgw/rgw.sh");
/** A fresh machine installs the Ceph packages first (measured ~16-35 s); leave room for a slow mirror. */
const START_TIMEOUT_MS = 10 * 60_000;

function say(msg: string): void {
  process.stderr.write(`[s3-conformance] ${msg}\n`);
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? "").split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Runs `rgw.sh <cmd> <dir>`, passing its stderr (install and bring-up messages) through. */
function rgwScript(cmd: "start" | "stop", dir: string, timeoutMs: number): Promise<string> {
  return new Promise((res, rej) => {
    const child = spawn("bash", [SCRIPT, cmd, dir], { stdio: ["ignore", "pipe", "pipe"], timeout: timeoutMs, killSignal: "SIGKILL" });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => process.stderr.write(d));
    child.on("error", rej);
    child.on("close", (code, signal) => {
      if (code === 0) res(out.trim());
      else {
        const hint = cmd === "start" ? "; set CONFORMANCE_S3=s3rver to run the conformance project on s3rver instead" : "";
        rej(new Error(`rgw.sh ${cmd} ${dir} failed (${signal ?? `exit ${code}`}); logs in ${dir}/log${hint}`));
      }
    });
  });
}

function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1] as string] = m[2] as string;
  }
  return env;
}

/** A throwaway Ceph RGW on loopback, stopped by its own script (by PID, never by name). */
async function startRgw(): Promise<S3Server> {
  const dir = mkdtempSync(join(tmpdir(), "barge-rgw-"));
  let stopped = false;
  const stopSync = (removeDir: boolean) => {
    if (stopped) return;
    stopped = true;
    try {
      execFileSync("bash", [SCRIPT, "stop", dir], { stdio: "ignore", timeout: 30_000 });
      if (removeDir) rmSync(dir, { recursive: true, force: true });
    } catch {
      // Best effort: the process is exiting anyway.
    }
  };
  // Vitest skips global teardowns when interrupted (Ctrl-C); the daemons must not outlive the run.
  const onExit = () => stopSync(true);
  process.once("exit", onExit);
  const t0 = Date.now();
  try {
    const envFile = await rgwScript("start", dir, START_TIMEOUT_MS);
    const env = parseEnv(readFileSync(envFile, "utf8"));
    const info: S3Info = {
      endpoint: env.S3_ENDPOINT ?? "",
      region: env.S3_REGION ?? "us-east-1",
      accessKeyId: env.S3_ACCESS_KEY_ID ?? "",
      secretAccessKey: env.S3_SECRET_ACCESS_KEY ?? "",
      kind: "rgw",
      bucket: env.S3_BUCKET ?? "barge-test",
    };
    if (!info.endpoint || !info.accessKeyId) throw new Error(`rgw.sh wrote an incomplete ${envFile}`);
    say(`Ceph RGW at ${info.endpoint}, ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (data dir ${dir})`);
    return {
      info,
      async stop() {
        if (stopped) return;
        stopped = true;
        process.off("exit", onExit);
        await rgwScript("stop", dir, 60_000);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    // A half-started cluster is stopped by the script too; keep the dir for its logs.
    stopSync(false);
    process.off("exit", onExit);
    throw err;
  }
}

/** Where the conformance suites run, and why. */
function choose(env: NodeJS.ProcessEnv): { kind: "conformance-env" | "s3-env" | "rgw" | "s3rver"; why: string } {
  if (env.CONFORMANCE_S3_ENDPOINT) return { kind: "conformance-env", why: "CONFORMANCE_S3_ENDPOINT is set" };
  if (env.S3_ENDPOINT) return { kind: "s3-env", why: "S3_ENDPOINT is set" };
  const forced = env.CONFORMANCE_S3;
  if (forced === "rgw") return { kind: "rgw", why: "CONFORMANCE_S3=rgw" };
  if (forced === "s3rver") return { kind: "s3rver", why: "CONFORMANCE_S3=s3rver" };
  if (forced) throw new Error(`CONFORMANCE_S3 must be "rgw" or "s3rver", not ${JSON.stringify(forced)}`);
  if (process.platform !== "linux") return { kind: "s3rver", why: `Ceph RGW needs Linux, this is ${process.platform}` };
  if (process.getuid?.() !== 0) return { kind: "s3rver", why: "Ceph RGW is only set up when the tests run as root (set CONFORMANCE_S3=rgw if its packages are installed)" };
  if (!onPath("apt-get")) return { kind: "s3rver", why: "Ceph RGW needs apt-get to install its packages" };
  return { kind: "rgw", why: "Linux, root and apt-get" };
}

/**
 * Global setup of the `s3-conformance` project: a real S3 implementation. In order:
 * `CONFORMANCE_S3_ENDPOINT` (+ `_REGION`, `_ACCESS_KEY_ID`, `_SECRET_ACCESS_KEY`, `_BUCKET`), or
 * `S3_ENDPOINT` (+ the same `S3_*`); else Ceph RGW via `infra/rgw/rgw.sh` on Linux as root with
 * apt-get (or with `CONFORMANCE_S3=rgw`); else s3rver, where the suites that need strict S3 rules
 * skip themselves and say why. When RGW is chosen and fails to start, the run fails: a machine
 * that should test on real S3 must not quietly test on a fake.
 */
export default async function setup(project: TestProject) {
  const choice = choose(process.env);
  let server: S3Server;
  if (choice.kind === "conformance-env") server = await externalS3(process.env, "CONFORMANCE_S3_");
  else if (choice.kind === "s3-env") server = await externalS3(process.env, "S3_");
  else if (choice.kind === "rgw") server = await startRgw();
  else {
    say(`no real S3 server (${choice.why}): running on s3rver; suites that need strict S3 rules are skipped`);
    server = await embeddedS3rver();
  }
  if (choice.kind !== "s3rver" && choice.kind !== "rgw") say(`running on ${server.info.endpoint} (${choice.why})`);
  project.provide("s3", server.info);
  return () => server.stop();
}

import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { RequestLogEntry } from "@barge/engine-sim";

const agentMain = fileURLToPath(new URL("../../services/agent/src/main.ts", import.meta.url));
const simMain = fileURLToPath(new URL("../../services/engine-sim/src/main.ts", import.meta.url));

/** A child process a test started, with its stderr kept (agents log pino JSON there). */
export interface Child {
  readonly pid: number;
  readonly process: ChildProcess;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** The parsed JSON log lines on stderr so far. */
  logs(): Record<string, unknown>[];
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** Sends a signal to exactly this process (never by name). */
  signal(sig: NodeJS.Signals): void;
  /** SIGKILLs it (if still running) and waits for it to be gone. */
  kill(): Promise<void>;
}

/** Every child started through here, so a suite's afterEach can stop exactly those, by PID. */
export class Children {
  private readonly all: Child[] = [];

  /** Starts `node <script> ...args` (through tsx for TypeScript) with `env` on top of this process's env. */
  start(script: string, args: string[], env: Record<string, string>): Child {
    const loader = script.endsWith(".ts") ? ["--import", "tsx"] : [];
    const proc = spawn(process.execPath, [...loader, script, ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    if (proc.pid === undefined) throw new Error(`could not start ${script}`);
    let err = "";
    proc.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => {
      if (proc.exitCode !== null) resolve(proc.exitCode);
      else proc.once("exit", (code) => resolve(code));
    });
    const child: Child = {
      pid: proc.pid,
      process: proc,
      stderr: () => err,
      logs: () =>
        err.split("\n").flatMap((l) => {
          if (!l.startsWith("{")) return [];
          try {
            return [JSON.parse(l) as Record<string, unknown>];
          } catch {
            return [];
          }
        }),
      exited,
      signal: (sig) => {
        if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid!, sig);
      },
      kill: async () => {
        if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid!, "SIGKILL");
        await exited;
      },
    };
    this.all.push(child);
    return child;
  }

  /** An agent process on the suite's env; logs at info so tests can read what it did. */
  agent(env: Record<string, string>, agentId: string): Child {
    return this.start(agentMain, [], { ...env, LOG_LEVEL: "info", AGENT_ID: agentId });
  }

  /** An engine-sim process on a fixed port, appending its request log to `logFile`. */
  engineSim(port: number, logFile: string, args: string[] = []): Child {
    return this.start(simMain, ["serve", "barge-sim-1", "--port", String(port), "--log-file", logFile, ...args], {});
  }

  /** Kills every child still running and waits for each. */
  async stopAll(): Promise<void> {
    for (const c of this.all.splice(0)) await c.kill();
  }
}

/** The request log an engine-sim process appended to `logFile` (survives SIGKILL and restarts). */
export function simLog(logFile: string): RequestLogEntry[] {
  if (!existsSync(logFile)) return [];
  return readFileSync(logFile, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as RequestLogEntry);
}

/** Polls until `probe` returns something truthy; errors count as "not yet" (a server may be down). */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until an engine-sim process answers GET /v1/models. */
export function simReady(url: string): Promise<boolean> {
  return eventually(`engine-sim at ${url}`, async () => (await fetch(`${url}/v1/models`)).ok, 30_000);
}

import { fork, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { createLogger } from "@barge/core";
import type { EmbeddedS3 } from "./s3.js";
import { freePort } from "./ports.js";
import { loadOrCreateS3Credentials, s3CredentialsFile } from "./s3-credentials.js";
import { LogTail } from "./start-failure.js";

/** The embedded S3 in a child process the stack restarts when it dies. */
export interface SupervisedS3 extends EmbeddedS3 {
  /** The PID of the child serving now (undefined between a crash and its restart). */
  pid(): number | undefined;
  /** How many times the child was restarted after an unexpected exit. */
  restarts(): number;
}

/** Delays between restarts: doubling from `firstMs`, capped at `maxMs`, reset after `stableMs` up. */
export interface Backoff {
  firstMs: number;
  maxMs: number;
  stableMs: number;
}

/** What the supervisor reports through: the stack's logger, or a test's recorder. */
export type SupervisorLog = Pick<ReturnType<typeof createLogger>, "error" | "warn">;

const DEFAULT_BACKOFF: Backoff = { firstMs: 200, maxMs: 10_000, stableMs: 30_000 };
const STOP_GRACE_MS = 5_000;
const CHILD_ENTRY = fileURLToPath(new URL("./s3-child.ts", import.meta.url));

/**
 * Starts s3rver in its own process on a loopback port, storing under `dir`, and keeps it running:
 * an unexpected exit is logged and the child restarted on the same port and directory, so the
 * API's and the agent's S3 calls fail only until it is back, as in any S3 outage. Only requests
 * signed with `dir`'s own credentials (`<dir>/credentials.json`, made on first start) are served.
 */
export async function startSupervisedS3(
  dir: string,
  buckets: string[],
  opts: { log: SupervisorLog; port?: number; backoff?: Partial<Backoff> },
): Promise<SupervisedS3> {
  mkdirSync(dir, { recursive: true });
  const creds = loadOrCreateS3Credentials(dir);
  // mkdtemp makes it owner-only: s3rver's socket in it is reachable by no other user. Kept here
  // (not in the child) so a SIGKILLed child's socket is still cleaned up at stop.
  const socketDir = mkdtempSync(join(tmpdir(), "barge-s3-"));
  const socketPath = join(socketDir, "s3rver.sock");
  const port = opts.port ?? (await freePort());
  const backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
  const log = opts.log;
  let child: ChildProcess | undefined;
  let stopping = false;
  let restarts = 0;
  let failuresInRow = 0;
  let timer: NodeJS.Timeout | undefined;

  /** Forks one child and resolves with it once it serves; rejects, with what it wrote, if it exits first. */
  const spawnChild = () =>
    new Promise<ChildProcess>((resolve, reject) => {
      const c = fork(CHILD_ENTRY, [dir, String(port), JSON.stringify(buckets), s3CredentialsFile(dir), socketPath], {
        execArgv: ["--import", "tsx"],
        stdio: ["ignore", "inherit", "pipe", "ipc"],
      });
      const tail = new LogTail(5);
      c.stderr!.on("data", (d: Buffer) => {
        process.stderr.write(d);
        tail.push(d.toString());
      });
      const onEarlyExit = (code: number | null, signal: NodeJS.Signals | null) => {
        const said = tail.get();
        reject(new Error(`embedded S3 exited (${exitReason(code, signal)}) before it was ready${said.length ? `; it said:\n${said.join("\n")}` : ""}`));
      };
      c.once("exit", onEarlyExit);
      c.once("message", () => {
        c.off("exit", onEarlyExit);
        resolve(c);
      });
    });

  /** Serves with a new child, and watches it for an exit nobody asked for. */
  const run = async (): Promise<void> => {
    const c = await spawnChild();
    if (stopping) {
      c.kill("SIGTERM");
      return;
    }
    child = c;
    const upSince = Date.now();
    c.once("exit", (code, signal) => {
      child = undefined;
      if (stopping) return;
      if (Date.now() - upSince >= backoff.stableMs) failuresInRow = 0;
      log.error({ pid: c.pid, code, signal }, `embedded S3 exited (${exitReason(code, signal)}); restarting`);
      scheduleRestart();
    });
  };

  const scheduleRestart = () => {
    const delay = Math.min(backoff.firstMs * 2 ** failuresInRow, backoff.maxMs);
    failuresInRow++;
    timer = setTimeout(() => {
      timer = undefined;
      if (stopping) return;
      run().then(
        () => {
          restarts++;
          log.warn({ pid: child?.pid, port }, "embedded S3 restarted");
        },
        (err: unknown) => {
          log.error({ err: String(err) }, "embedded S3 did not restart; trying again");
          scheduleRestart();
        },
      );
    }, delay);
  };

  await run().catch((err: unknown) => {
    rmSync(socketDir, { recursive: true, force: true });
    throw err;
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId: creds.accessKeyId,
    secretAccessKey: creds.secretAccessKey,
    pid: () => child?.pid,
    restarts: () => restarts,
    stop: async () => {
      stopping = true;
      if (timer) clearTimeout(timer);
      if (child) await stopChild(child);
      rmSync(socketDir, { recursive: true, force: true });
    },
  };
}

/** SIGTERM by PID, then SIGKILL if the child is still there after a grace period. */
async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => c.once("exit", () => resolve()));
  process.kill(c.pid!, "SIGTERM");
  const grace = setTimeout(() => c.kill("SIGKILL"), STOP_GRACE_MS);
  await exited;
  clearTimeout(grace);
}

function exitReason(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `signal ${signal}` : `code ${code}`;
}

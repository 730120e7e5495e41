import { spawn, spawnSync } from "node:child_process";
import { accessSync, chmodSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { freePort } from "@barge/devstack";

// PgBouncer in transaction mode in front of the tests' PostgreSQL, as a child process stopped by
// its PID. Debian's `pgbouncer` package is installed on first use when missing (as root with
// apt-get, as support/prometheus.ts installs Prometheus).

const PACKAGE = "pgbouncer";
const INSTALL_TIMEOUT_MS = 5 * 60_000;
const APT_LOG = join(tmpdir(), "barge-pgbouncer-apt.log");
const SEARCH = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin"];

function binary(): string | undefined {
  for (const dir of SEARCH) {
    try {
      accessSync(join(dir, "pgbouncer"), constants.X_OK);
      return join(dir, "pgbouncer");
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

function aptGet(args: string[]): boolean {
  // Suites installing at once wait for dpkg's lock instead of failing on it.
  const r = spawnSync("apt-get", ["-o", "DPkg::Lock::Timeout=300", ...args], {
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    stdio: ["ignore", "pipe", "pipe"],
    timeout: INSTALL_TIMEOUT_MS,
    encoding: "utf8",
  });
  writeFileSync(APT_LOG, `$ apt-get ${args.join(" ")}\n${r.stdout ?? ""}${r.stderr ?? ""}`, { flag: "a" });
  return r.status === 0;
}

/** The pgbouncer binary, installed when missing (root and apt-get), or why there is none. */
export function pgbouncerBinary(): { path: string } | { missing: string } {
  const found = binary();
  if (found) return { path: found };
  if (process.getuid?.() !== 0) return { missing: `pgbouncer is missing; install it (Debian: apt-get install ${PACKAGE}) or run as root` };
  process.stderr.write(`[pgbouncer] installing ${PACKAGE} (log: ${APT_LOG})\n`);
  const args = ["install", "-y", "-q", "--no-install-recommends", PACKAGE];
  // A fresh machine may have no package lists yet; only refresh when the first try fails.
  if (!aptGet(args) && !(aptGet(["update", "-q"]), aptGet(args))) return { missing: `apt-get install ${PACKAGE} failed; see ${APT_LOG}` };
  const installed = binary();
  return installed ? { path: installed } : { missing: `apt-get installed ${PACKAGE} but pgbouncer is not on PATH or in /usr/sbin` };
}

/** A running PgBouncer. */
export interface PgBouncer {
  /** A client URL for database `alias` through the bouncer. */
  url: string;
  /** Its admin console (`SHOW POOLS`, `SHOW STATS`), the `pgbouncer` database. */
  adminUrl: string;
  pid: number;
  /** What it logged so far. */
  log(): string;
  /** SIGTERM by PID, SIGKILL if it lingers. */
  stop(): Promise<void>;
}

export interface PgBouncerOptions {
  /** The server URL (user, password, host, port) to pool connections to. */
  serverUrl: string;
  /** The server database the alias names. */
  database: string;
  alias: string;
  /** Server connections per user and database: fewer than the clients, so they are shared. */
  poolSize: number;
}

/**
 * Starts pgbouncer on a free 127.0.0.1 port in transaction mode: one alias to `database`, clients
 * trusted. `ignore_startup_parameters = options` because node-pg sends the `options` startup
 * parameter (Barge pins search_path with it), which PgBouncer 1.18 would refuse; the bouncer then
 * drops it, so the database's own search_path (public) applies.
 */
export async function startPgBouncer(bin: string, o: PgBouncerOptions): Promise<PgBouncer> {
  const server = new URL(o.serverUrl);
  const user = decodeURIComponent(server.username);
  const password = decodeURIComponent(server.password);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "barge-pgbouncer-"));
  // Run as root, pgbouncer refuses to start; it runs as nobody, which must read its files.
  chmodSync(dir, 0o755);
  const ini = join(dir, "pgbouncer.ini");
  const users = join(dir, "userlist.txt");
  writeFileSync(users, `"${user}" ""\n`, { mode: 0o644 });
  writeFileSync(
    ini,
    [
      "[databases]",
      `${o.alias} = host=${server.hostname} port=${server.port || 5432} dbname=${o.database} user=${user} password=${password}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${users}`,
      `admin_users = ${user}`,
      "pool_mode = transaction",
      `default_pool_size = ${o.poolSize}`,
      "max_client_conn = 500",
      "ignore_startup_parameters = options",
      "",
    ].join("\n"),
    { mode: 0o644 },
  );
  const nobody = process.getuid?.() === 0 ? passwdEntry("nobody") : undefined;
  const child = spawn(bin, [ini], { stdio: ["ignore", "pipe", "pipe"], ...(nobody ?? {}) });
  if (child.pid === undefined) throw new Error("could not start pgbouncer");
  const pid = child.pid;
  let log = "";
  child.stdout?.on("data", (d: Buffer) => (log += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(pid, "SIGTERM");
    const timer = setTimeout(() => child.exitCode === null && child.signalCode === null && process.kill(pid, "SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  while (!(await listening(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`pgbouncer did not listen on ${port}:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const auth = `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  return { url: `postgres://${auth}@127.0.0.1:${port}/${o.alias}`, adminUrl: `postgres://${auth}@127.0.0.1:${port}/pgbouncer`, pid, log: () => log, stop };
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });
}

function passwdEntry(name: string): { uid: number; gid: number } {
  const line = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith(`${name}:`));
  const [, , uid, gid] = line?.split(":") ?? [];
  if (uid === undefined || gid === undefined) throw new Error(`no ${name} user to run pgbouncer as`);
  return { uid: Number(uid), gid: Number(gid) };
}

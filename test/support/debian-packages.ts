import { spawnSync } from "node:child_process";
import { accessSync, constants, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

/** A fresh machine downloads a package and its dependencies; leave room for a slow mirror. */
const INSTALL_TIMEOUT_MS = 10 * 60_000;

/** Where `cmd` is on PATH, or undefined. */
export function onPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return join(dir, cmd);
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

function aptGet(args: string[], log: string): boolean {
  // Suites installing at once wait for dpkg's lock instead of failing on it.
  const r = spawnSync("apt-get", ["-o", "DPkg::Lock::Timeout=300", ...args], {
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    stdio: ["ignore", "pipe", "pipe"],
    timeout: INSTALL_TIMEOUT_MS,
    encoding: "utf8",
  });
  writeFileSync(log, `$ apt-get ${args.join(" ")}\n${r.stdout ?? ""}${r.stderr ?? ""}`, { flag: "a" });
  return r.status === 0;
}

/**
 * Installs a Debian package as root with apt-get, as infra/rgw/rgw.sh installs Ceph, until `binary`
 * is on PATH; undefined when it is, else why not.
 */
export function aptInstall(pkg: string, binary: string): string | undefined {
  if (process.getuid?.() !== 0 || !onPath("apt-get")) {
    return `${binary} is missing; install it (Debian: apt-get install --no-install-recommends ${pkg}) or run as root on a Debian-like system`;
  }
  const log = join(tmpdir(), `barge-${pkg}-apt.log`);
  process.stderr.write(`[${binary}] installing ${pkg} (log: ${log})\n`);
  const args = ["install", "-y", "-q", "--no-install-recommends", pkg];
  // A fresh machine may have no package lists yet; only refresh when the first try fails.
  if (!aptGet(args, log) && !(aptGet(["update", "-q"], log), aptGet(args, log))) return `apt-get install ${pkg} failed; see ${log}`;
  return onPath(binary) ? undefined : `apt-get installed ${pkg} but ${binary} is not on PATH`;
}

import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { processAlive } from "./processes.js";

/**
 * What a data directory's `postmaster.pid` says about who holds it. PostgreSQL trusts the PID in
 * that file only when `kill(pid, 0)` says "no such process"; a PID reused by an unrelated process
 * (or one the postgres user may not signal) makes it refuse to start, so the stack decides first.
 */
export type PostmasterHolder =
  | { kind: "none" }
  | { kind: "stale"; pid: number }
  | { kind: "ours-orphaned"; pid: number }
  | { kind: "live"; pid: number; ownerPid?: number };

/** Where the stack records which process started the postmaster (beside the data directory). */
export function ownerFile(dataDir: string): string {
  return `${dataDir}.owner`;
}

/** Records this process as the one that started the postmaster on `dataDir`. */
export function recordOwner(dataDir: string): void {
  writeFileSync(ownerFile(dataDir), `${process.pid}\n`);
}

/** Reads `postmaster.pid` and classifies its holder (see PostmasterHolder). */
export function inspectPostmaster(dataDir: string): PostmasterHolder {
  const pidFile = `${dataDir}/postmaster.pid`;
  if (!existsSync(pidFile)) return { kind: "none" };
  const pid = Number.parseInt(readFileSync(pidFile, "utf8").split("\n")[0] ?? "", 10);
  if (!Number.isInteger(pid) || pid <= 0 || !isLivePostgres(pid)) return { kind: "stale", pid };
  const ownerPid = readOwner(dataDir);
  // The postmaster's parent is the process that spawned it until that process dies; then the
  // kernel hands it to init (or a subreaper), so a parent other than the recorded owner means
  // the stack that started it was killed and nothing will ever stop it.
  const parent = parentPid(pid);
  if (ownerPid !== undefined && parent !== undefined && parent !== ownerPid) return { kind: "ours-orphaned", pid };
  return { kind: "live", pid, ...(ownerPid !== undefined ? { ownerPid } : {}) };
}

/** Removes a `postmaster.pid` whose PID is not a live postgres, as pg_ctl's users would by hand. */
export function removeStalePidFile(dataDir: string): void {
  rmSync(`${dataDir}/postmaster.pid`, { force: true });
}

/** Asks an orphaned postmaster for a fast shutdown and waits until it is gone. */
export async function stopOrphan(pid: number, timeoutMs = 30_000): Promise<void> {
  signal(pid, "SIGINT");
  const deadline = Date.now() + timeoutMs;
  while (isLivePostgres(pid)) {
    if (Date.now() > deadline) {
      // Fast shutdown did not finish in time: an immediate one, then give up waiting politely.
      signal(pid, "SIGQUIT");
      await sleep(2_000);
      if (isLivePostgres(pid)) throw new Error(`PostgreSQL (PID ${pid}) left by an earlier stack did not stop`);
      return;
    }
    await sleep(100);
  }
}

function readOwner(dataDir: string): number | undefined {
  try {
    const n = Number.parseInt(readFileSync(ownerFile(dataDir), "utf8"), 10);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `pid` is a running (not zombie) postgres process; without /proc, whether it exists. */
function isLivePostgres(pid: number): boolean {
  const stat = procStat(pid);
  if (stat === null) return false;
  if (stat === undefined) return processAlive(pid);
  if (stat.state === "Z" || stat.state === "X") return false;
  return stat.comm.startsWith("postgres");
}

function parentPid(pid: number): number | undefined {
  const stat = procStat(pid);
  return stat ? stat.ppid : undefined;
}

/** `/proc/<pid>/stat` fields, null when the process is gone, undefined where /proc is missing. */
function procStat(pid: number): { comm: string; state: string; ppid: number } | null | undefined {
  if (!existsSync("/proc/self/stat")) return undefined;
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // comm is in parentheses and may itself hold spaces or parentheses: split at the last ")".
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  const [state = "", ppid = "0"] = text.slice(close + 2).split(" ");
  return { comm: text.slice(open + 1, close), state, ppid: Number(ppid) };
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

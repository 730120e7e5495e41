import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync, readdirSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";
import { ROOT, ensureDir } from "./env.js";

// Child processes of a benchmark: started with their own env and log file, measured through
// /proc (RSS, peak RSS, CPU time), and stopped by their PID only.

/** Memory and CPU of one process, from /proc/<pid>/status and /proc/<pid>/stat. */
export interface ProcUsage {
  /** Current resident set, bytes. */
  rss: number;
  /** Peak resident set since the process started (VmHWM), bytes. */
  peakRss: number;
  /** User + system CPU time, seconds. */
  cpuSeconds: number;
}

const CLOCK_TICKS = 100;

/** Usage of a live process, or undefined once it is gone. */
export function procUsage(pid: number): ProcUsage | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
    // Fields after the command name (which may hold spaces) start at field 3; utime is 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const cpu = (Number(rest[11]) + Number(rest[12])) / CLOCK_TICKS;
    return { rss: kb("VmRSS"), peakRss: kb("VmHWM"), cpuSeconds: cpu };
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds (user + system) of a process and every descendant: the live ones read now, the
 * reaped ones through their parent's cutime/cstime. PostgreSQL's backends are the postmaster's
 * children, so this is the server's whole CPU.
 */
export function treeCpuSeconds(pid: number): number {
  const stats = new Map<number, { ppid: number; cpu: number }>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // ppid is field 4; utime, stime, cutime, cstime are 14 to 17.
      const cpu = [11, 12, 13, 14].reduce((a, i) => a + Number(rest[i]), 0) / CLOCK_TICKS;
      stats.set(Number(entry), { ppid: Number(rest[1]), cpu });
    } catch {
      // Gone between the listing and the read: its time is in its parent's cutime once reaped.
    }
  }
  let total = 0;
  const pending = [pid];
  while (pending.length > 0) {
    const p = pending.pop()!;
    total += stats.get(p)?.cpu ?? 0;
    for (const [child, s] of stats) if (s.ppid === p) pending.push(child);
  }
  return total;
}

/** Things a benchmark started, stopped in reverse order whatever happens. */
export class Scope {
  private readonly stops: { name: string; stop: () => Promise<unknown> }[] = [];

  add(name: string, stop: () => Promise<unknown>): void {
    this.stops.push({ name, stop });
  }

  /** Stops one registered thing early (it is not stopped again). */
  async stopOne(name: string): Promise<void> {
    const i = this.stops.findIndex((s) => s.name === name);
    if (i === -1) return;
    const [entry] = this.stops.splice(i, 1);
    await entry?.stop();
  }

  async close(): Promise<void> {
    for (const { name, stop } of this.stops.splice(0).reverse()) {
      await stop().catch((err: unknown) => process.stderr.write(`[bench] stopping ${name} failed: ${String(err)}\n`));
    }
  }
}

export interface NodeServiceOptions {
  /** A short name, used for the log file and in messages. */
  name: string;
  /** A built `.mjs` bundle, or a TypeScript entry point (run through tsx) relative to the repository root. */
  script: string;
  args?: string[];
  env: Record<string, string | undefined>;
  /** Directory for `<name>.log` (stdout and stderr). */
  logDir: string;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeArgs?: string[];
  /** Resolves true once the service is usable. */
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
}

/** A running child process. */
export interface NodeService {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  usage(): ProcUsage | undefined;
  /** Usage read just before the process was signalled (peak RSS survives only while it runs). */
  readonly finalUsage: ProcUsage | undefined;
  /** SIGTERM by PID, SIGKILL after `graceMs`; resolves with the exit code (null when killed). */
  stop(graceMs?: number): Promise<number | null>;
  readonly exited: Promise<number | null>;
}

/** Starts `node <script>` (through tsx for TypeScript) from the repository root and waits until `ready()` holds. */
export async function startNodeService(o: NodeServiceOptions): Promise<NodeService> {
  ensureDir(o.logDir);
  const logFile = join(o.logDir, `${o.name}.log`);
  const fd = openSync(logFile, "w");
  let child: ChildProcess;
  try {
    const loader = o.script.endsWith(".ts") ? ["--import", "tsx"] : [];
    child = spawn(process.execPath, [...(o.nodeArgs ?? []), ...loader, o.script, ...(o.args ?? [])], {
      cwd: ROOT,
      env: cleanEnv(o.env),
      stdio: ["ignore", fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${o.name}: spawn failed`);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      exitCode = code;
      resolve(code);
    });
  });
  let finalUsage: ProcUsage | undefined;
  let stopping: Promise<number | null> | undefined;

  const service: NodeService = {
    name: o.name,
    pid,
    logFile,
    usage: () => (exitCode === undefined ? procUsage(pid) : undefined),
    get finalUsage() {
      return finalUsage;
    },
    exited,
    stop(graceMs = 20_000) {
      stopping ??= (async () => {
        if (exitCode !== undefined) return exitCode;
        finalUsage = procUsage(pid) ?? finalUsage;
        child.kill("SIGTERM");
        const timedOut = await Promise.race([exited.then(() => false), sleep(graceMs, undefined, { ref: false }).then(() => true)]);
        if (timedOut) {
          process.stderr.write(`[bench] ${o.name} (pid ${pid}) ignored SIGTERM for ${graceMs} ms; SIGKILL\n`);
          child.kill("SIGKILL");
        }
        return exited;
      })();
      return stopping;
    },
  };

  const deadline = Date.now() + (o.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (exitCode !== undefined) throw new Error(`${o.name} exited with ${exitCode} before it was ready:\n${tail(logFile)}`);
    if (await o.ready().catch(() => false)) break;
    if (Date.now() > deadline) {
      await service.stop(2_000);
      throw new Error(`${o.name} was not ready within ${o.readyTimeoutMs ?? 60_000} ms:\n${tail(logFile)}`);
    }
    await sleep(100);
  }
  return service;
}

/** The last lines of a log file, for error messages. */
export function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

function cleanEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

/** Periodic RSS and CPU samples of a set of processes. */
export class UsageSampler {
  private readonly timer: NodeJS.Timeout;
  private readonly samples = new Map<string, { t: number; rss: number; cpu: number }[]>();
  private readonly t0 = Date.now();

  constructor(
    private readonly services: NodeService[],
    intervalMs = 250,
  ) {
    for (const s of services) this.samples.set(s.name, []);
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
    this.sample();
  }

  private sample(): void {
    const t = (Date.now() - this.t0) / 1000;
    for (const s of this.services) {
      const u = s.usage();
      if (u) this.samples.get(s.name)?.push({ t, rss: u.rss, cpu: u.cpuSeconds });
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }

  /** Peak sampled RSS and a coarse series (at most `points` samples) per process, in MB. */
  summary(points = 40): Record<string, { max_sampled_rss_mb: number; series: [number, number][] }> {
    const out: Record<string, { max_sampled_rss_mb: number; series: [number, number][] }> = {};
    for (const [name, list] of this.samples) {
      const step = Math.max(1, Math.ceil(list.length / points));
      out[name] = {
        max_sampled_rss_mb: mb(Math.max(0, ...list.map((s) => s.rss))),
        series: list.filter((_, i) => i % step === 0).map((s) => [round(s.t, 1), mb(s.rss)]),
      };
    }
    return out;
  }
}

export function mb(bytes: number): number {
  return round(bytes / (1024 * 1024), 1);
}

export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

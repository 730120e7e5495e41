import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { aptInstall, onPath } from "./debian-packages.js";

/** Debian's `prometheus` package ships both the server and promtool. */
const PACKAGE = "prometheus";

/** Prometheus' tools, or why they are not here. */
export type PrometheusTools = { promtool: string; prometheus: string; missing?: undefined } | { missing: string };

let found: PrometheusTools | undefined;

/**
 * promtool and the Prometheus server, installed on first use when missing and running as root.
 * Under CI=true a machine without them fails the run with the reason instead of skipping.
 */
export function prometheusTools(): PrometheusTools {
  if (found) return found;
  const missing = onPath("promtool") && onPath("prometheus") ? undefined : aptInstall(PACKAGE, "promtool");
  if (missing && process.env.CI === "true") throw new Error(`${missing} (CI=true: the promtool checks must run)`);
  found = missing ? { missing } : { promtool: onPath("promtool")!, prometheus: onPath("prometheus")! };
  return found;
}

/** A promtool run's exit code and output (stdout and stderr together, as promtool splits its findings between them). */
export interface PromtoolRun {
  code: number;
  output: string;
}

/** Runs promtool with `args`, feeding `stdin` when given. */
export function runPromtool(promtool: string, args: string[], stdin?: string): PromtoolRun {
  const r = spawnSync(promtool, args, { input: stdin, encoding: "utf8", timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

/** `promtool check metrics` on an exposition: its exit code and every finding (lint problems included). */
export function checkMetrics(promtool: string, exposition: string): PromtoolRun {
  return runPromtool(promtool, ["check", "metrics"], exposition);
}

/** A Prometheus server this test process started; `stop()` ends it by its PID and removes its data. */
export interface PrometheusServer {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts Debian's Prometheus server on 127.0.0.1 with `config` (YAML text) and a throwaway data
 * directory, and waits until it answers `/-/ready`.
 */
export async function startPrometheus(prometheus: string, config: string, port: number): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), "barge-prometheus-"));
  writeFileSync(join(dir, "prometheus.yml"), config);
  const child = spawn(
    prometheus,
    [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (log = (log + d).slice(-4000)));
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  for (const deadline = Date.now() + 30_000; ; ) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`prometheus exited with ${child.exitCode}: ${log}`);
    }
    const ready = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ready) return { url, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus did not get ready on ${url}: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

import { spawn, type ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "@barge/core";

// The engine as a child of the agent (ENGINE_COMMAND), so one agent can load whichever model has
// work waiting. The agent owns exactly the process it spawned: it stops it by PID, never by name.

export interface EngineProcessOptions {
  /** ENGINE_COMMAND: an argv template with `{model}` and `{port}`, split on whitespace (no shell). */
  command: string;
  port: number;
  log: Logger;
  /** How long a stopped engine may take to exit on SIGTERM before it is SIGKILLed. */
  stopGraceMs?: number;
  /** Delay before restarting an engine that died on its own. */
  restartDelayMs?: number;
}

/** A supervised engine process. */
export interface EngineProcess {
  /** The model the engine was last started with. */
  readonly model: string | undefined;
  readonly pid: number | undefined;
  /** Stops any running engine, then starts one serving `model`; restarts it whenever it dies on its own. */
  start(model: string): Promise<void>;
  /** Stops the engine (SIGTERM, then SIGKILL past the grace) and waits for it to exit; no restart follows. */
  stop(): Promise<void>;
}

/** The argv of ENGINE_COMMAND for a model and port. */
export function engineArgv(command: string, model: string, port: number): string[] {
  return command
    .trim()
    .split(/\s+/)
    .map((arg) => arg.replaceAll("{model}", model).replaceAll("{port}", String(port)));
}

/** Creates the supervisor; nothing runs until `start()`. */
export function createEngineProcess(opts: EngineProcessOptions): EngineProcess {
  const stopGraceMs = opts.stopGraceMs ?? 10_000;
  const restartDelayMs = opts.restartDelayMs ?? 1_000;
  let model: string | undefined;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  // Bumped by every start and stop: an exit belonging to an older generation restarts nothing.
  let generation = 0;

  function launch(gen: number): void {
    if (model === undefined) return;
    const [file, ...args] = engineArgv(opts.command, model, opts.port);
    if (file === undefined) throw new Error("ENGINE_COMMAND is empty");
    const proc = spawn(file, args, { shell: false, stdio: ["ignore", "inherit", "inherit"] });
    child = proc;
    opts.log.info({ pid: proc.pid, model, port: opts.port }, "engine started");
    exited = new Promise<void>((resolve) => {
      proc.once("error", (err) => {
        opts.log.error({ err, model }, "engine could not be started");
        resolve();
      });
      proc.once("exit", (code, signal) => {
        resolve();
        if (gen !== generation) return;
        opts.log.warn({ pid: proc.pid, code, signal, model }, "engine exited on its own; restarting it");
        void sleep(restartDelayMs).then(() => {
          if (gen === generation) launch(gen);
        });
      });
    });
  }

  async function halt(): Promise<void> {
    generation++;
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
    proc.kill("SIGTERM");
    const killer = setTimeout(() => proc.kill("SIGKILL"), stopGraceMs);
    await exited;
    clearTimeout(killer);
    opts.log.info({ pid: proc.pid, model }, "engine stopped");
  }

  return {
    get model() {
      return model;
    },
    get pid() {
      return child?.pid;
    },
    async start(next) {
      await halt();
      model = next;
      launch(generation);
    },
    stop: halt,
  };
}

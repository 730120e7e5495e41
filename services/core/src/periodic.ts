import type { Logger } from "./log.js";

/** A background loop that can be nudged awake and stopped. */
export interface Loop {
  wake(): void;
  /** Resolves once the step in flight (if any) has finished and the loop has exited. */
  stop(): Promise<void>;
}

/** How a loop paces its steps. */
export interface LoopOptions {
  /** Wait one interval before the first step too: the caller has just done that work itself. */
  delayFirst?: boolean;
  /**
   * Keep steps on a fixed grid of `idleMs` from the first one, as setInterval would, skipping the
   * ticks a slow step overran instead of piling them up: for heartbeats, whose period is a promise.
   */
  fixedRate?: boolean;
}

/**
 * A step of a loop: true when it did work and should run again at once. `signal` aborts when the
 * loop is stopped, so a step waiting on the network can give up.
 */
export type LoopStep = (signal: AbortSignal) => Promise<boolean | void>;

/**
 * Runs `step` again at once while it reports work done, otherwise after `idleMs` or a wake().
 * Steps never overlap. A failing step is logged and retried after the idle wait: a loop never
 * crashes its process.
 */
export function startLoop(name: string, log: Logger, idleMs: number, step: LoopStep, opts: LoopOptions = {}): Loop {
  const stopCtl = new AbortController();
  let woken = false;
  let interrupt: (() => void) | null = null;

  const idle = (ms: number) =>
    new Promise<void>((resolve) => {
      if (woken || stopCtl.signal.aborted) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        interrupt = null;
        resolve();
      }
      interrupt = done;
    });

  const run = (async () => {
    if (opts.delayFirst) await idle(idleMs);
    while (!stopCtl.signal.aborted) {
      // A wake that arrives during the step means "look again" rather than "sleep".
      woken = false;
      const startedAt = performance.now();
      let busy = false;
      try {
        busy = (await step(stopCtl.signal)) === true;
      } catch (err) {
        log.error({ err, loop: name }, "background step failed; retrying later");
      }
      if (busy) continue;
      const elapsed = performance.now() - startedAt;
      await idle(opts.fixedRate ? idleMs - (elapsed % idleMs) : idleMs);
    }
  })();

  return {
    wake() {
      woken = true;
      interrupt?.();
    },
    async stop() {
      stopCtl.abort();
      interrupt?.();
      await run;
    },
  };
}

/** Runs `tick` now and every `everyMs` after (fixed rate), never two at once, until stopped. */
export function startTicker(name: string, log: Logger, everyMs: number, tick: (signal: AbortSignal) => Promise<void>, opts: Pick<LoopOptions, "delayFirst"> = {}): Loop {
  return startLoop(name, log, everyMs, async (signal) => void (await tick(signal)), { ...opts, fixedRate: true });
}

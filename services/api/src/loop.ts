import type { Logger } from "@barge/core";

/** A background loop that can be nudged awake and stopped. */
export interface Loop {
  wake(): void;
  /** Resolves once the step in flight (if any) has finished and the loop has exited. */
  stop(): Promise<void>;
}

/**
 * Runs `step` again at once while it reports work done, otherwise after `idleMs` or a wake().
 * A failing step is logged and retried after the idle wait: a loop never crashes its process.
 */
export function startLoop(name: string, log: Logger, idleMs: number, step: () => Promise<boolean>): Loop {
  let stopped = false;
  let woken = false;
  let interrupt: (() => void) | null = null;

  const idle = () =>
    new Promise<void>((resolve) => {
      if (woken || stopped) return resolve();
      const timer = setTimeout(done, idleMs);
      function done() {
        clearTimeout(timer);
        interrupt = null;
        resolve();
      }
      interrupt = done;
    });

  const run = (async () => {
    while (!stopped) {
      // A wake that arrives during the step means "look again" rather than "sleep".
      woken = false;
      let busy = false;
      try {
        busy = await step();
      } catch (err) {
        log.error({ err, loop: name }, "background step failed; retrying later");
      }
      if (!busy) await idle();
    }
  })();

  return {
    wake() {
      woken = true;
      interrupt?.();
    },
    async stop() {
      stopped = true;
      interrupt?.();
      await run;
    },
  };
}

import type { ApiDeps } from "./deps.js";
import { startSweeper } from "./sweeper.js";
import { startValidator } from "./validator.js";

/** The API's background work: batch validation and the expired-upload sweeper. */
export interface Background {
  /** Nudges the validator: a batch was just created. */
  wake(): void;
  /** Resolves when both loops have finished their current step and exited. */
  stop(): Promise<void>;
}

/** Starts the validator and the upload sweeper. */
export function startBackground(deps: ApiDeps): Background {
  const validator = startValidator(deps);
  const sweeper = startSweeper(deps);
  return {
    wake: () => validator.wake(),
    stop: async () => {
      await Promise.all([validator.stop(), sweeper.stop()]);
    },
  };
}

import type { ApiDeps } from "./deps.js";
import { startSweeper } from "./sweeper.js";
import { startValidator } from "./validator.js";
import { startWebhookDelivery } from "./webhooks/deliver.js";

/** The API's background work: batch validation, the expiry sweeper and webhook delivery. */
export interface Background {
  /** Nudges the validator: a batch was just created. */
  wake(): void;
  /** Resolves when every loop has finished its current step and exited. */
  stop(): Promise<void>;
}

/** Starts the validator, the sweeper and the webhook delivery loop. */
export function startBackground(deps: ApiDeps): Background {
  const loops = { validator: startValidator(deps), sweeper: startSweeper(deps), webhooks: startWebhookDelivery(deps) };
  return {
    wake: () => loops.validator.wake(),
    stop: async () => {
      await Promise.all(Object.values(loops).map((l) => l.stop()));
    },
  };
}

import type { ObjectTrigger } from "@barge/core";
import type { ApiDeps } from "./deps.js";
import { startSweeper } from "./sweeper.js";
import { serverlessOn, startServerless } from "./trigger/serverless.js";
import { startValidator } from "./validator.js";
import { startWebhookDelivery } from "./webhooks/deliver.js";

/** The API's background work: batch validation, the expiry sweeper and webhook delivery. */
export interface Background {
  /** Nudges the validator: a batch was just created. */
  wake(): void;
  /** Where landed objects go, when serverless mode is on. */
  trigger?: ObjectTrigger;
  /** Resolves when every loop has finished its current step and exited. */
  stop(): Promise<void>;
}

/** Starts the validator, the sweeper, the webhook delivery loop and, when on, serverless mode's loops. */
export function startBackground(deps: ApiDeps): Background {
  const validator = startValidator(deps);
  const loops = [validator, startSweeper(deps), startWebhookDelivery(deps)];
  const serverless = serverlessOn(deps.config) ? startServerless(deps, () => validator.wake()) : undefined;
  if (serverless) loops.push(...serverless.loops);
  return {
    wake: () => validator.wake(),
    ...(serverless ? { trigger: serverless.trigger } : {}),
    stop: async () => {
      await Promise.all(loops.map((l) => l.stop()));
    },
  };
}

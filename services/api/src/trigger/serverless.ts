import type { Loop, ObjectTrigger } from "@barge/core";
import type { ApiDeps } from "../deps.js";
import { startAcceptor } from "./acceptor.js";
import { createObjectTrigger } from "./object-trigger.js";
import { startPoller } from "./poller.js";
import { startStatusWriter } from "./status-writer.js";

/** Serverless mode is on when something can announce objects: the poller (TRIGGER_POLL_SECONDS) or S3 events (S3_EVENTS_TOKEN). */
export function serverlessOn(config: ApiDeps["config"]): boolean {
  return config.TRIGGER_POLL_SECONDS !== undefined || config.S3_EVENTS_TOKEN !== undefined;
}

/** Serverless mode's running parts: the trigger to hand landed objects to, and its loops. */
export interface Serverless {
  trigger: ObjectTrigger;
  loops: Loop[];
}

/**
 * Starts serverless mode: the acceptor (landed objects to batches), the status.json writer and,
 * with TRIGGER_POLL_SECONDS, the poller. `wakeValidator` is nudged for every batch started.
 */
export function startServerless(deps: ApiDeps, wakeValidator: () => void): Serverless {
  const statusWriter = startStatusWriter(deps);
  const acceptor = startAcceptor(deps, () => {
    wakeValidator();
    statusWriter.wake();
  });
  const trigger = createObjectTrigger(deps, () => acceptor.wake());
  const loops = [acceptor, statusWriter];
  if (deps.config.TRIGGER_POLL_SECONDS !== undefined) loops.push(startPoller(deps, trigger, deps.config.TRIGGER_POLL_SECONDS));
  return { trigger, loops };
}

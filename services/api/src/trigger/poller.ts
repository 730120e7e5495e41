import { listLandedPages, startLoop, type Loop, type ObjectTrigger } from "@barge/core";
import type { ApiDeps } from "../deps.js";

/**
 * Lists TRIGGER_PREFIX every TRIGGER_POLL_SECONDS and hands every entry to the trigger, for S3
 * servers that send no events. Why hand over everything: the trigger's unique index makes an
 * object seen before cost one conflicting insert, and Postgres, not this process, remembers
 * what was seen, so any number of replicas may poll.
 */
export function startPoller(deps: ApiDeps, trigger: ObjectTrigger, everySeconds: number): Loop {
  return startLoop("poller", deps.log, everySeconds * 1000, async () => {
    let added = 0;
    for await (const page of listLandedPages(deps, deps.config.TRIGGER_PREFIX)) added += await trigger.landed(page);
    if (added > 0) deps.log.info({ added }, "the poller found new objects");
    return false;
  });
}

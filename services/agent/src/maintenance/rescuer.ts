import { expireBatches, forgetDepartedAgents, rescueExpiredChunks, startTicker, type Bucket, type Db, type Logger, type Loop } from "@barge/core";
import { sweepLeftoverSegments } from "./janitor.js";

/** How long an agent row outlives its last heartbeat: long past any lease, short enough to keep `agents` small. */
export const DEPARTED_AGENT_SECONDS = 24 * 3600;

/**
 * The housekeeping every agent runs, now and every `intervalMs`: returns chunks whose lease
 * lapsed (a dead or partitioned agent) to the queue, moves batches past `expires_at` to their
 * expiry, deletes the segments a crashed finalizer left behind, and forgets agents gone for a
 * day (`DEPARTED_AGENT_SECONDS`). Every statement is idempotent
 * and re-checks its condition under the row lock, so any number of agents can run this at once.
 */
export function startRescuer(deps: Bucket & { db: Db; log: Logger; intervalMs: number; onRescued?: (chunks: number) => void }): Loop {
  const step = async (name: string, work: () => Promise<void>) => {
    try {
      await work();
    } catch (err) {
      deps.log.warn({ err, step: name }, "housekeeping step failed; retrying next interval");
    }
  };
  return startTicker("housekeeping", deps.log, deps.intervalMs, async () => {
    await step("rescue", async () => {
      const rescued = await rescueExpiredChunks(deps.db);
      if (rescued > 0) {
        deps.log.info({ rescued }, "requeued chunks with lapsed leases");
        deps.onRescued?.(rescued);
      }
    });
    await step("expire", async () => {
      const expired = await expireBatches(deps.db);
      if (expired.length > 0) deps.log.info({ batches: expired }, "batches expired; finalizing what they committed");
    });
    await step("janitor", async () => {
      const cleaned = await sweepLeftoverSegments(deps);
      if (cleaned.length > 0) deps.log.info({ batches: cleaned }, "deleted segments a finalizer left behind");
    });
    await step("agents", async () => {
      const forgotten = await forgetDepartedAgents(deps.db, DEPARTED_AGENT_SECONDS);
      if (forgotten > 0) deps.log.info({ forgotten }, "forgot agents not seen for a day");
    });
  });
}

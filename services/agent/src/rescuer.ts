import { rescueExpiredChunks, type Db, type Logger } from "@barge/core";

/** A running periodic task. */
export interface Periodic {
  stop(): void;
}

/**
 * Returns chunks whose lease lapsed (a dead or partitioned agent) to the queue, now and every
 * `intervalMs`. Every agent runs one: the statement is idempotent and re-checks expiry under the
 * row lock, so concurrent rescuers only ever requeue a chunk once.
 */
export function startRescuer(deps: { db: Db; log: Logger; intervalMs: number }): Periodic {
  let running = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      const rescued = await rescueExpiredChunks(deps.db);
      if (rescued > 0) deps.log.info({ rescued }, "requeued chunks with lapsed leases");
    } catch (err) {
      deps.log.warn({ err }, "lease rescue failed; retrying next interval");
    } finally {
      running = false;
    }
  };
  void tick();
  const timer = setInterval(() => void tick(), deps.intervalMs);
  return {
    stop() {
      clearInterval(timer);
    },
  };
}

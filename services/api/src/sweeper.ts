import type { ApiDeps } from "./deps.js";
import { startLoop, type Loop } from "./loop.js";
import { deleteExpiredPending } from "./store/files.js";
import { deleteObject } from "./store/objects.js";

const SWEEP_BATCH = 100;

/**
 * Deletes presigned uploads nobody completed before their URL lapsed, rows first (so a racing
 * completion finds nothing to complete) and then whatever objects were PUT. Returns how many.
 */
export async function sweepExpiredUploads(deps: Pick<ApiDeps, "db" | "s3" | "bucket" | "log">, now = new Date()): Promise<number> {
  let swept = 0;
  for (;;) {
    const keys = await deleteExpiredPending(deps.db, now, SWEEP_BATCH);
    for (const key of keys) {
      await deleteObject(deps, key).catch((err: unknown) => deps.log.warn({ err, key }, "could not delete an expired upload"));
    }
    swept += keys.length;
    if (keys.length < SWEEP_BATCH) return swept;
  }
}

/** Sweeps expired uploads periodically: as often as uploads expire, at most once a minute. */
export function startSweeper(deps: ApiDeps): Loop {
  const everyMs = Math.min(deps.config.PRESIGN_EXPIRES_SECONDS, 60) * 1000;
  return startLoop("upload-sweeper", deps.log, everyMs, async () => {
    const n = await sweepExpiredUploads(deps);
    if (n > 0) deps.log.info({ swept: n }, "expired uploads deleted");
    return false;
  });
}

import type { Db } from "../db/connect.js";
import { renewBatchLease } from "../queue/renew-batch-lease.js";

/** A batch lease being renewed in the background until `stop`. */
export interface HeldBatchLease {
  /** Whether a renewal found the batch taken over (its fence moved on): nothing fenced will commit. */
  readonly lost: boolean;
  stop(): void;
}

export interface HoldBatchLeaseOptions {
  /**
   * Called when a renewal fails (Postgres unreachable, say); the next one retries regardless.
   * Without it a failure is ignored. The two holders differ here on purpose, as they always
   * have: the finalizer logs a warning, the validator stays silent and relies on its fenced
   * transition, which refuses a batch whose lease was lost.
   */
  onRenewFailed?: (err: unknown) => void;
}

/**
 * Renews a claimed batch's work lease every third of its length, so one or two failed renewals
 * do not let it lapse, until `stop` is called. A renewal that finds the lease taken over sets
 * `lost`; callers check it before publishing, and their fenced writes fail regardless.
 */
export function holdBatchLease(
  deps: { db: Db; leaseSeconds: number },
  ref: { batchId: string; fence: number },
  opts: HoldBatchLeaseOptions = {},
): HeldBatchLease {
  let lost = false;
  const timer = setInterval(
    () => {
      renewBatchLease(deps.db, { batchId: ref.batchId, fence: ref.fence, leaseSeconds: deps.leaseSeconds })
        .then((ok) => {
          if (!ok) lost = true;
        })
        .catch((err: unknown) => opts.onRenewFailed?.(err));
    },
    (deps.leaseSeconds * 1000) / 3,
  );
  return {
    get lost() {
      return lost;
    },
    stop: () => clearInterval(timer),
  };
}

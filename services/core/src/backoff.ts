/** How a retry loop spaces its attempts. */
export interface Backoff {
  /** The wait before the second attempt. */
  base: number;
  /** No wait is longer than this. */
  cap: number;
  /**
   * Full jitter (a uniform draw below the capped value) from this source, so a fleet retrying one
   * failed server does not come back in lockstep. Without it the wait is the capped value itself.
   */
  random?: () => number;
}

/**
 * The wait after failed attempt `attempt` (1 for the first failure): `base · 2^(attempt-1)`,
 * capped, optionally jittered. Units are the caller's (milliseconds or seconds).
 */
export function backoffDelay(attempt: number, b: Backoff): number {
  const capped = Math.min(b.cap, b.base * 2 ** (attempt - 1));
  return b.random ? b.random() * capped : capped;
}

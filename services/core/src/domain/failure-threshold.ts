import type { BatchErrorEntry } from "../db/schema.js";

/**
 * The `min_requests` a batch gets when it names only `max_failure_rate`. Why not 0: the first
 * few results say little about a template, and one early failure would cancel the batch.
 */
export const DEFAULT_MIN_REQUESTS = 100;

/** The batch's `errors` entry for a cancel by the failure threshold. */
export function failureThresholdError(c: { done: number; failed: number; maxFailureRate: number }): BatchErrorEntry {
  const percent = Math.round((c.failed / c.done) * 1000) / 10;
  return {
    code: "failure_threshold",
    message: `${c.failed} of ${c.done} requests done failed (${percent}%), above the batch's max_failure_rate of ${c.maxFailureRate}; the batch was cancelled, keeping its partial results.`,
    param: null,
    line: null,
  };
}

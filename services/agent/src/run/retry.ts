import { setTimeout as sleep } from "node:timers/promises";
import { backoffDelay } from "@barge/core";

export interface RetryOptions {
  /** Whether an error is worth another try (a lost lease never is). */
  retryable: (err: unknown) => boolean;
  /** Stop retrying once this long has passed since the first failure. */
  maxMs: number;
  baseMs?: number;
  capMs?: number;
  /** Aborting stops the waiting between tries; the last error is thrown. */
  signal?: AbortSignal;
  onRetry?: (err: unknown, attempt: number) => void;
}

/**
 * Runs `fn` until it succeeds, retrying what `retryable` accepts with capped exponential backoff
 * and full jitter. This is how S3 and Postgres outages of seconds cost a pause instead of a
 * failed chunk: every write it wraps is fenced, so repeating one is always safe.
 */
export async function withRetries<T>(fn: () => Promise<T>, opts: RetryOptions): Promise<T> {
  const base = opts.baseMs ?? 100;
  const cap = opts.capMs ?? 2000;
  let firstFailure: number | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      firstFailure ??= Date.now();
      if (!opts.retryable(err) || opts.signal?.aborted || Date.now() - firstFailure >= opts.maxMs) throw err;
      opts.onRetry?.(err, attempt);
      const delay = backoffDelay(attempt, { base, cap, random: Math.random });
      const waited = await sleep(delay, true, opts.signal ? { signal: opts.signal } : {}).catch(() => false);
      if (!waited) throw err;
    }
  }
}

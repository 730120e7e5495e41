import { setFlagsFromString } from "node:v8";

/**
 * Caps how far the V8 heap grows past its live data, so a long-running service's memory stays flat
 * however many requests pass through it.
 *
 * Why: the API and agent allocate fast but keep little alive (a few segments, the requests in
 * flight). V8's default heuristic lets the old generation grow to up to 4x the live data after each
 * full GC, so peak RSS rose with batch length (an agent 189 MB at 10K requests, 261 MB at 1M) while
 * the live heap stayed near 30 MB. A fixed factor keeps the limit proportional to what is alive: no
 * cap that a batch of large prompts could hit (unlike --max-old-space-size), for a little more GC
 * work. `--heap-growing-percent` is read at every GC, so setting it at start-up takes effect, and
 * it cannot be passed in NODE_OPTIONS.
 */
export function limitHeapGrowth(percent: number): void {
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}

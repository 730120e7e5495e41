import { randomFillSync } from "node:crypto";

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";
const RANDOM_CHARS = 15;
/** Ids drawn per refill; one crypto call per this many result lines instead of one each. */
const IDS_PER_REFILL = 256;

/**
 * Makes `batch_req_` ids in core's `newId` format (fixed-width base36 milliseconds, then 15
 * random base36 characters) from a pooled random buffer: a crypto call per id showed up as a
 * few percent of the agent's CPU at thousands of results a second.
 */
export function createLineIds(): () => string {
  const pool = Buffer.alloc(RANDOM_CHARS * IDS_PER_REFILL);
  let at = pool.length;
  let lastMs = -1;
  let stamp = "";
  return () => {
    if (at === pool.length) {
      randomFillSync(pool);
      at = 0;
    }
    const now = Date.now();
    if (now !== lastMs) {
      lastMs = now;
      stamp = now.toString(36).padStart(9, "0");
    }
    let id = "batch_req_" + stamp;
    for (const end = at + RANDOM_CHARS; at < end; at++) id += ALPHABET[pool[at]! % 36];
    return id;
  };
}

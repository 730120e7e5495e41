import { randomBytes, randomFillSync } from "node:crypto";

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";
const TIME_CHARS = 9;
const RANDOM_CHARS = 15;

type IdPrefix = "file-" | "batch_" | "batch_req_" | "upload_" | "part_" | "key_";

/** The id for `ms` with `RANDOM_CHARS` base36 characters drawn from `bytes` at `at`. */
function formatId(prefix: IdPrefix, stamp: string, bytes: Uint8Array, at: number): string {
  let id = prefix + stamp;
  for (let i = at; i < at + RANDOM_CHARS; i++) id += ALPHABET[bytes[i]! % 36];
  return id;
}

const stampOf = (ms: number): string => ms.toString(36).padStart(TIME_CHARS, "0");

/**
 * A time-ordered id: fixed-width base36 milliseconds then randomness, so `ORDER BY id DESC`
 * is newest-first and serves cursor pagination (`after`) without a second sort key.
 */
export function newId(prefix: IdPrefix): string {
  return formatId(prefix, stampOf(Date.now()), randomBytes(RANDOM_CHARS), 0);
}

/**
 * A source of `newId`-format ids drawing from a pooled random buffer, for hot paths: a crypto call
 * per id showed up as a few percent of the agent's CPU at thousands of result lines a second.
 */
export function pooledIds(prefix: IdPrefix, idsPerRefill = 256): () => string {
  const pool = Buffer.alloc(RANDOM_CHARS * idsPerRefill);
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
      stamp = stampOf(now);
    }
    const id = formatId(prefix, stamp, pool, at);
    at += RANDOM_CHARS;
    return id;
  };
}

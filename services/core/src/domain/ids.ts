import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";

function random36(n: number): string {
  const bytes = randomBytes(n);
  let s = "";
  for (const b of bytes) s += ALPHABET[b % 36];
  return s;
}

/**
 * A time-ordered id: fixed-width base36 milliseconds then randomness, so `ORDER BY id DESC`
 * is newest-first and serves cursor pagination (`after`) without a second sort key.
 */
export function newId(prefix: "file-" | "batch_" | "batch_req_" | "upload_" | "part_"): string {
  return prefix + Date.now().toString(36).padStart(9, "0") + random36(15);
}

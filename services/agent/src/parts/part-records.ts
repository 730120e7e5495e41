import { createHash } from "node:crypto";
import type { Bucket, Db, Logger, SegmentRef } from "@barge/core";

// What the run-time side (build-part.ts) and the finalize side (finalize/assemble-parts.ts) of a
// batch's output parts agree on: how a part is numbered and how its sources are fingerprinted.

/** What building or assembling output parts needs. */
export interface ChunkPartDeps extends Bucket {
  db: Db;
  log: Logger;
}

/** A chunk's output segments, in order, and their total size. */
export interface ChunkOutput {
  idx: number;
  segments: SegmentRef[];
  bytes: number;
}

/** Digest of what a part is built from (its segments' keys and sizes, in order): a changed chunk output changes it. */
export function sourceDigest(segments: SegmentRef[]): string {
  const h = createHash("sha256");
  for (const s of segments) h.update(`${s.key}\t${s.size}\n`);
  return h.digest("hex");
}

/** Part numbers are 1-based, chunk indexes 0-based: a part is numbered after its first chunk. */
export function partNumber(firstChunk: number): number {
  return firstChunk + 1;
}

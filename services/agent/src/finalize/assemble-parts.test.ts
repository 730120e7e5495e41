import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { MIN_PART_BYTES } from "@barge/core";
import type { ChunkOutput } from "../parts/part-records.js";
import { planPieces } from "./assemble-parts.js";

/** Chunk outputs of one segment each, `bytes` long. */
const outputs = (sizes: number[]): ChunkOutput[] => sizes.map((bytes, idx) => ({ idx, bytes, segments: [{ key: `s${idx}`, size: bytes }] }));

describe("planPieces: the parts the finalizer completes the output from", () => {
  const M = MIN_PART_BYTES;
  const sizes = [M / 2, M / 2, M / 2, M / 2, M / 4];
  const chunks = outputs(sizes);
  /** What the agent records for chunks first..last: built from their current segments unless overridden. */
  const record = (first: number, last: number, over: Partial<{ etag: string | null; upload_id: string }> = {}) => {
    const mine = chunks.filter((c) => c.idx >= first && c.idx <= last);
    const digest = createHash("sha256");
    for (const c of mine) for (const s of c.segments) digest.update(`${s.key}\t${s.size}\n`);
    return {
      first_chunk: first,
      last_chunk: last,
      upload_id: "u",
      part_number: first + 1,
      etag: `"e${first}"`,
      bytes: mine.reduce((n, c) => n + c.bytes, 0),
      source_digest: digest.digest("hex"),
      ...over,
    };
  };
  const shape = (pieces: { first: number; last: number; etag?: string }[]) => pieces.map((p) => [p.first, p.last, p.etag ?? null]);

  it("keeps every valid recorded part and uploads nothing when they tile the output", () => {
    expect(shape(planPieces(chunks, [record(4, 4), record(0, 1), record(2, 3)], "u"))).toEqual([
      [0, 1, '"e0"'],
      [2, 3, '"e2"'],
      [4, 4, '"e4"'],
    ]);
  });

  it("groups the chunks no valid part covers into parts to upload", () => {
    // Part 3 (chunks 2-3) is on another upload and chunk 4 has none: chunks 2..4 are one piece to upload.
    expect(shape(planPieces(chunks, [record(0, 1), record(2, 3, { upload_id: "old" })], "u"))).toEqual([
      [0, 1, '"e0"'],
      [2, 4, null],
    ]);
    // Chunk 2's segments changed since its part was built.
    const changed = outputs(sizes).map((c) => (c.idx === 2 ? { ...c, segments: [{ key: "s2-rerun", size: c.bytes }] } : c));
    expect(shape(planPieces(changed, [record(0, 1), record(2, 3), record(4, 4)], "u"))).toEqual([
      [0, 1, '"e0"'],
      [2, 3, null],
      [4, 4, '"e4"'],
    ]);
  });

  it("merges a part below 5 MiB that is not the last with the next one", () => {
    // Chunk 1 has no part; chunk 0's alone is too small to stay a part before another.
    expect(shape(planPieces(chunks, [record(0, 0), record(2, 3), record(4, 4)], "u"))).toEqual([
      [0, 1, null],
      [2, 3, '"e2"'],
      [4, 4, '"e4"'],
    ]);
  });

  it("drops a part overlapping an earlier valid one, and one claimed but never uploaded", () => {
    expect(shape(planPieces(chunks, [record(0, 1), record(1, 3), record(2, 3, { etag: null }), record(4, 4)], "u"))).toEqual([
      [0, 1, '"e0"'],
      [2, 3, null],
      [4, 4, '"e4"'],
    ]);
  });
});

import { sql } from "kysely";
import type { Db } from "../db/connect.js";

/** One chunk as the choice of output parts sees it. */
export interface OutputPartChunk {
  idx: number;
  /** Every request committed: its output segments are final. */
  complete: boolean;
  /** Its committed output bytes. */
  bytes: number;
  /** The output part that covers it (claimed or uploaded), if any. */
  part: { first: number; last: number } | null;
}

/**
 * Every chunk of a batch, in order, with its committed output size and the part covering it.
 * Why one statement over all chunks: a run of chunks is only known from its neighbours, and a
 * batch has at most a few hundred chunks. Complete means committed, not `done`: a chunk chooses
 * its part just before it is marked done, so its neighbour must already count it.
 */
export async function outputPartChunks(db: Db, batchId: string): Promise<OutputPartChunk[]> {
  const r = await sql<{ idx: number; complete: boolean; bytes: number; first_chunk: number | null; last_chunk: number | null }>`
    SELECT c.idx, c.committed = c.request_count AS complete,
           COALESCE(o.bytes, 0)::bigint AS bytes, p.first_chunk, p.last_chunk
    FROM chunks c
    LEFT JOIN (
      SELECT chunk_idx, sum(bytes) AS bytes FROM segments
      WHERE batch_id = ${batchId} AND kind = 'output' GROUP BY chunk_idx
    ) o ON o.chunk_idx = c.idx
    LEFT JOIN LATERAL (
      SELECT first_chunk, last_chunk FROM output_parts
      WHERE batch_id = c.batch_id AND c.idx BETWEEN first_chunk AND last_chunk
      ORDER BY first_chunk LIMIT 1
    ) p ON true
    WHERE c.batch_id = ${batchId}
    ORDER BY c.idx
  `.execute(db);
  return r.rows.map((row) => ({
    idx: row.idx,
    complete: row.complete,
    bytes: Number(row.bytes),
    part: row.first_chunk === null || row.last_chunk === null ? null : { first: row.first_chunk, last: row.last_chunk },
  }));
}

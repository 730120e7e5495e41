import { sql, type Transaction } from "kysely";
import type { Database, SegmentKind } from "../db/schema.js";
import type { BatchProgress } from "../domain/openai.js";
import { affectedOne } from "./affected.js";

/** A segment and the checkpoint it advances to; the progress fields count this segment alone. */
export interface SegmentCommit extends BatchProgress {
  batchId: string;
  idx: number;
  fence: number;
  /** The segment number being committed; must equal the chunk's `next_seq`. */
  seq: number;
  /** Requests this segment covers (output + error lines), and the checkpoint after it. */
  requests: number;
  nextOffset: number;
  nextLine: number;
  objects: { kind: SegmentKind; key: string; bytes: number; lines: number }[];
}

/**
 * Advances a chunk's checkpoint past one segment. Must run in the same transaction as the
 * segment rows' insert (see `recordSegments`). Why fenced on `fence` and `next_seq`: a holder
 * that lost its lease, or a duplicate commit of the same segment, matches no row; the caller
 * then rolls back so the orphaned S3 objects are never referenced.
 */
export async function advanceCheckpoint(tx: Transaction<Database>, c: SegmentCommit): Promise<boolean> {
  const r = await sql`
    UPDATE chunks
    SET committed = committed + ${c.requests},
        next_offset = ${c.nextOffset},
        next_line = ${c.nextLine},
        next_seq = next_seq + 1,
        completed = completed + ${c.completed},
        failed = failed + ${c.failed},
        prompt_tokens = prompt_tokens + ${c.promptTokens},
        completion_tokens = completion_tokens + ${c.completionTokens},
        cached_tokens = cached_tokens + ${c.cachedTokens},
        reasoning_tokens = reasoning_tokens + ${c.reasoningTokens},
        updated_at = now()
    WHERE batch_id = ${c.batchId} AND idx = ${c.idx} AND fence = ${c.fence}
      AND status = 'leased' AND next_seq = ${c.seq}
      AND committed + ${c.requests} <= request_count
  `.execute(tx);
  return affectedOne(r);
}

import { sql } from "kysely";
import type { Db } from "./connect.js";
import { emptyProgress, type BatchProgress } from "../domain/openai.js";

/** Progress sums as `PROGRESS_SUMS` names them, one row per batch. */
export interface ProgressSums {
  completed: number;
  failed: number;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
}

/**
 * The select list that sums chunk checkpoints into a batch's progress, over whatever chunk rows
 * the query groups: one definition for the batch list and the one-statement status poll.
 */
export const PROGRESS_SUMS = sql<ProgressSums>`
  coalesce(sum(completed), 0)::int8 AS completed, coalesce(sum(failed), 0)::int8 AS failed,
  coalesce(sum(prompt_tokens), 0)::int8 AS prompt_tokens, coalesce(sum(completion_tokens), 0)::int8 AS completion_tokens,
  coalesce(sum(cached_tokens), 0)::int8 AS cached_tokens, coalesce(sum(reasoning_tokens), 0)::int8 AS reasoning_tokens`;

/** A row of `PROGRESS_SUMS` as the Batch object's progress. */
export function progressFromSums(r: ProgressSums): BatchProgress {
  return {
    completed: r.completed,
    failed: r.failed,
    promptTokens: r.prompt_tokens,
    completionTokens: r.completion_tokens,
    cachedTokens: r.cached_tokens,
    reasoningTokens: r.reasoning_tokens,
  };
}

/**
 * Committed progress per batch, summed from chunk checkpoints. Derived rather than kept on the
 * batch row so concurrent segment commits from many agents never contend on one hot row.
 */
export async function batchProgress(db: Db, batchIds: string[]): Promise<Map<string, BatchProgress>> {
  const out = new Map<string, BatchProgress>();
  if (batchIds.length === 0) return out;
  const { rows } = await sql<ProgressSums & { batch_id: string }>`
    SELECT batch_id, ${PROGRESS_SUMS}
    FROM chunks WHERE batch_id = ANY(${batchIds}::text[]) GROUP BY batch_id
  `.execute(db);
  for (const id of batchIds) out.set(id, { ...emptyProgress });
  for (const r of rows) out.set(r.batch_id, progressFromSums(r));
  return out;
}

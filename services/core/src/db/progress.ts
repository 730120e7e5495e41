import { sql } from "kysely";
import type { Db } from "./connect.js";
import { emptyProgress, type BatchProgress } from "../domain/openai.js";

/**
 * Committed progress per batch, summed from chunk checkpoints. Derived rather than kept on the
 * batch row so concurrent segment commits from many agents never contend on one hot row.
 */
export async function batchProgress(db: Db, batchIds: string[]): Promise<Map<string, BatchProgress>> {
  const out = new Map<string, BatchProgress>();
  if (batchIds.length === 0) return out;
  const { rows } = await sql<{
    batch_id: string;
    completed: number;
    failed: number;
    prompt_tokens: number;
    completion_tokens: number;
    cached_tokens: number;
    reasoning_tokens: number;
  }>`
    SELECT batch_id, sum(completed)::int8 AS completed, sum(failed)::int8 AS failed,
           sum(prompt_tokens)::int8 AS prompt_tokens, sum(completion_tokens)::int8 AS completion_tokens,
           sum(cached_tokens)::int8 AS cached_tokens, sum(reasoning_tokens)::int8 AS reasoning_tokens
    FROM chunks WHERE batch_id = ANY(${batchIds}::text[]) GROUP BY batch_id
  `.execute(db);
  for (const id of batchIds) out.set(id, { ...emptyProgress });
  for (const r of rows) {
    out.set(r.batch_id, {
      completed: r.completed,
      failed: r.failed,
      promptTokens: r.prompt_tokens,
      completionTokens: r.completion_tokens,
      cachedTokens: r.cached_tokens,
      reasoningTokens: r.reasoning_tokens,
    });
  }
  return out;
}

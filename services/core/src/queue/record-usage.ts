import { sql, type Transaction } from "kysely";
import type { Database } from "../db/schema.js";

/** What one commit adds to a chunk's usage: the requests it settles, of them failed, and their tokens. */
export interface UsageDelta {
  batchId: string;
  idx: number;
  /** Requests this commit settles: its checkpoint's `committed` step. */
  requests: number;
  /** Of them, those counted failed (error lines, a given-up chunk's requests). */
  failed: number;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
}

/**
 * Adds one commit to `tenant_usage` under the chunk's tenant and model, its batch and the UTC day
 * of the commit. Why in the commit's own transaction, after its fenced checkpoint write: usage
 * then counts exactly what the checkpoints count, and a commit that lost its fence rolls back
 * with its usage. Why last in that transaction: every commit of a batch on one day meets on one
 * row, so its lock is taken when nothing else is left to wait for, and always after the batch row.
 */
export async function recordUsage(tx: Transaction<Database>, u: UsageDelta): Promise<void> {
  if (u.requests === 0) return;
  await sql`
    INSERT INTO tenant_usage AS t (day, tenant, model, batch_id, requests, failed, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens)
    SELECT (now() AT TIME ZONE 'UTC')::date, c.tenant, c.model, c.batch_id,
           ${u.requests}, ${u.failed}, ${u.promptTokens}, ${u.completionTokens}, ${u.cachedTokens}, ${u.reasoningTokens}
    FROM chunks c
    WHERE c.batch_id = ${u.batchId} AND c.idx = ${u.idx}
    ON CONFLICT (day, tenant, model, batch_id) DO UPDATE
    SET requests = t.requests + EXCLUDED.requests,
        failed = t.failed + EXCLUDED.failed,
        prompt_tokens = t.prompt_tokens + EXCLUDED.prompt_tokens,
        completion_tokens = t.completion_tokens + EXCLUDED.completion_tokens,
        cached_tokens = t.cached_tokens + EXCLUDED.cached_tokens,
        reasoning_tokens = t.reasoning_tokens + EXCLUDED.reasoning_tokens
  `.execute(tx);
}

import { sql, type Transaction } from "kysely";
import type { Database } from "../db/schema.js";

/** A batch's committed counts at the moment its failure rate crossed `max_failure_rate`. */
export interface ThresholdCrossing {
  done: number;
  failed: number;
  maxFailureRate: number;
}

/**
 * Whether a running batch's committed failure rate is past its `max_failure_rate`, with at least
 * `min_requests` done. Why one aggregate over the batch's chunk checkpoints at each segment
 * commit: the counters are already summed per chunk there, and a batch has few chunks, so the
 * check costs one indexed lookup (none of the aggregate for a batch without a threshold) and
 * sees what the caller's transaction is committing. Why also on a segment without failures:
 * the `min_requests` floor can be reached by successes alone.
 */
export async function failureThresholdCrossed(tx: Transaction<Database>, batchId: string): Promise<ThresholdCrossing | undefined> {
  const { rows } = await sql<{ done: number; failed: number; max_failure_rate: number }>`
    SELECT t.done, t.failed, b.max_failure_rate
    FROM batches b
    CROSS JOIN LATERAL (
      SELECT coalesce(sum(c.completed + c.failed), 0)::int AS done, coalesce(sum(c.failed), 0)::int AS failed
      FROM chunks c WHERE c.batch_id = b.id
    ) t
    WHERE b.id = ${batchId} AND b.status = 'in_progress' AND b.max_failure_rate IS NOT NULL
      AND t.done > 0 AND t.done >= coalesce(b.min_requests, 0)
      AND t.failed::float8 / t.done > b.max_failure_rate
  `.execute(tx);
  const r = rows[0];
  return r ? { done: r.done, failed: r.failed, maxFailureRate: r.max_failure_rate } : undefined;
}

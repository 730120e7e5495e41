import { sql } from "kysely";
import type { BatchStatus, Db } from "@barge/core";

/** Batches per status, over every batch the database holds. */
export async function batchesByStatus(db: Db): Promise<Map<BatchStatus, number>> {
  // One row per batch (not per request or chunk), grouped in one pass: the table a scrape reads
  // whole is the smallest one that knows every status, the finished ones included.
  const rows = await db.selectFrom("batches").select(["status", (eb) => eb.fn.countAll<string>().as("n")]).groupBy("status").execute();
  return new Map(rows.map((r) => [r.status, Number(r.n)]));
}

/** Committed requests and tokens of one model, summed over every tenant and day. */
export interface ModelUsageTotals {
  model: string;
  /** Every committed request, output and error lines alike (as `SegmentCommit.requests`). */
  requests: number;
  failed: number;
  promptTokens: number;
  completionTokens: number;
}

/**
 * The usage ledger's totals per model. Why `tenant_usage` and not the chunks: it is written in
 * the commit's own transaction and outlives a deleted batch, so the sums only ever grow and read
 * the same from every API replica, as a Prometheus counter must.
 */
export async function usageTotals(db: Db): Promise<ModelUsageTotals[]> {
  const { rows } = await sql<{ model: string; requests: string; failed: string; prompt: string; completion: string }>`
    SELECT model, sum(requests) AS requests, sum(failed) AS failed,
           sum(prompt_tokens) AS prompt, sum(completion_tokens) AS completion
    FROM tenant_usage
    GROUP BY model
    ORDER BY model
  `.execute(db);
  return rows.map((r) => ({
    model: r.model,
    requests: Number(r.requests),
    failed: Number(r.failed),
    promptTokens: Number(r.prompt),
    completionTokens: Number(r.completion),
  }));
}

/**
 * The most failed claims (lapsed leases, failed runs) of any chunk still queued or leased; 0 when
 * none failed. Each sub-select matches a partial index's predicate, so no finished chunk is read.
 */
export async function maxUnfinishedChunkFailures(db: Db): Promise<number> {
  const { rows } = await sql<{ max: number | null }>`
    SELECT greatest(
      (SELECT max(failures) FROM chunks WHERE status = 'queued'),
      (SELECT max(failures) FROM chunks WHERE status = 'leased')
    ) AS max
  `.execute(db);
  return rows[0]?.max ?? 0;
}

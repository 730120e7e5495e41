import { sql } from "kysely";
import type { Db, GpuReading } from "@barge/core";

/** An agent seen recently, with what its last heartbeat said. */
export interface LiveAgent {
  id: string;
  hostname: string;
  models: string[];
  last_seen_at: Date;
  gpus: GpuReading[] | null;
  kv_cache_usage: number | null;
  claims_paused_reason: string | null;
  in_flight: number | null;
  concurrency_limit: number | null;
}

/** Agents seen since `since`, by id. The table holds one row per agent ever run, not per event. */
export function liveAgents(db: Db, since: Date): Promise<LiveAgent[]> {
  return db
    .selectFrom("agents")
    .select(["id", "hostname", "models", "last_seen_at", "gpus", "kv_cache_usage", "claims_paused_reason", "in_flight", "concurrency_limit"])
    .where("last_seen_at", ">=", since)
    .orderBy("id")
    .execute();
}

/** A batch an agent holds a chunk lease of, with the batch's tenant. */
export interface LeasedBatch {
  batchId: string;
  tenant: string;
}

/**
 * The batches each agent holds a chunk lease of, sorted. Reads only leased chunks (the rescuer's
 * partial index), so it is bounded by the work running now, not by history.
 */
export async function leasedBatchesByAgent(db: Db): Promise<Map<string, LeasedBatch[]>> {
  const rows = await db
    .selectFrom("chunks")
    .select(["leased_by", "batch_id", "tenant"])
    .where("status", "=", "leased")
    .where("leased_by", "is not", null)
    .groupBy(["leased_by", "batch_id", "tenant"])
    .orderBy("batch_id")
    .execute();
  const byAgent = new Map<string, LeasedBatch[]>();
  for (const r of rows) byAgent.set(r.leased_by!, [...(byAgent.get(r.leased_by!) ?? []), { batchId: r.batch_id, tenant: r.tenant }]);
  return byAgent;
}

/** The queue as admission sees it (see `admitBatch`), and how long its oldest work has waited. */
export interface QueueCounts {
  activeBatches: number;
  queuedRequests: number;
  /** The creation time of the oldest batch with a queued chunk; null when nothing waits. */
  oldestWaiting: Date | null;
}

/**
 * One statement over active rows only: each sub-select matches a partial index's predicate
 * (batches needing a worker, batches in progress, queued and leased chunks), so none of them
 * reads a finished batch or a done chunk.
 */
export async function queueCounts(db: Db): Promise<QueueCounts> {
  const { rows } = await sql<{ active: string; queued: string; oldest: Date | null }>`
    SELECT
      (SELECT count(*) FROM batches WHERE status IN ('validating', 'finalizing', 'cancelling'))
        + (SELECT count(*) FROM batches WHERE status = 'in_progress') AS active,
      (SELECT coalesce(sum(request_count - committed), 0) FROM chunks WHERE status = 'queued')
        + (SELECT coalesce(sum(request_count - committed), 0) FROM chunks WHERE status = 'leased') AS queued,
      (SELECT min(batch_created_at) FROM chunks WHERE status = 'queued') AS oldest
  `.execute(db);
  const r = rows[0]!;
  return { activeBatches: Number(r.active), queuedRequests: Number(r.queued), oldestWaiting: r.oldest === null ? null : new Date(r.oldest) };
}

import { bucketReachable, gpuLimits, gpuMemoryPercent, gpuOverLimit } from "@barge/core";
import type { z } from "zod";
import type { ApiDeps } from "./deps.js";
import type { healthObject } from "./objects.js";
import { leasedBatchesByAgent, liveAgents, queueCounts, type LeasedBatch, type LiveAgent, type QueueCounts } from "./store/health.js";

export type HealthReport = z.infer<typeof healthObject>;

/** An agent counts as live while its last heartbeat is at most this many leases old (one beat per lease). */
export const LIVE_LEASES = 3;
/** How long the bucket may take to answer a HeadBucket before it counts as unreachable. */
export const BUCKET_PROBE_MS = 2000;

const seconds = (ms: number) => Math.round(ms / 100) / 10;

/**
 * Who reads the report: anonymous callers (a load balancer) get aggregates only; a tenant gets
 * the workers naming only its own batches; the admin gets every batch.
 */
export type HealthViewer = { kind: "anonymous" } | { kind: "tenant"; tenant: string } | { kind: "admin" };

/**
 * The deployment's health: Postgres or the bucket unreachable is `unhealthy`; no live agent, an
 * agent that stopped claiming (a hot GPU) or a full queue is `degraded`. A known viewer also gets
 * the workers, which name the batches it may see (see HealthViewer); an anonymous one still sees
 * every GPU and the aggregate queue. A worker's status counts every batch, shown or not.
 */
export async function healthReport(deps: ApiDeps, now: Date, viewer: HealthViewer): Promise<HealthReport> {
  const full = viewer.kind !== "anonymous";
  const shown = (b: LeasedBatch) => viewer.kind === "admin" || (viewer.kind === "tenant" && b.tenant === viewer.tenant);
  const { config } = deps;
  const limits = {
    max_requests_per_job: config.MAX_REQUESTS_PER_BATCH,
    max_queue_depth: config.MAX_ACTIVE_BATCHES,
    max_total_queued_requests: config.MAX_QUEUED_REQUESTS,
    max_file_bytes: config.MAX_FILE_BYTES,
  };
  const since = new Date(now.getTime() - LIVE_LEASES * config.LEASE_SECONDS * 1000);
  const bucket = bucketReachable(deps, BUCKET_PROBE_MS);
  let read: [LiveAgent[], Map<string, LeasedBatch[]>, QueueCounts] | undefined;
  try {
    read = await Promise.all([liveAgents(deps.db, since), leasedBatchesByAgent(deps.db), queueCounts(deps.db)]);
  } catch (err) {
    deps.log.warn({ err }, "health check: database unreachable");
  }
  const reasons: string[] = [];
  if (!read) reasons.push("database unreachable");
  if (!(await bucket)) reasons.push("bucket unreachable");
  if (!read) return { status: "unhealthy", reasons, gpu: [], ...(full ? { workers: [] } : {}), queue: null, limits };

  const [agents, leased, counts] = read;
  const gpuLimit = gpuLimits(config);
  const gpu = agents.flatMap((a) =>
    (a.gpus ?? []).map((g) => ({ agent_id: a.id, ...g, memory_percent: memoryPercent(g), healthy: gpuOverLimit(g, gpuLimit) === undefined })),
  );
  const workers = agents.map((a) => {
    const batches = leased.get(a.id) ?? [];
    const status = a.claims_paused_reason !== null ? "paused" : batches.length > 0 || (a.in_flight ?? 0) > 0 ? "processing" : "idle";
    return {
      id: a.id,
      host: a.hostname,
      models: a.models,
      status: status as "paused" | "processing" | "idle",
      paused_reason: a.claims_paused_reason,
      current_batch_ids: batches.filter(shown).map((b) => b.batchId),
      heartbeat_age_seconds: Math.max(0, seconds(now.getTime() - a.last_seen_at.getTime())),
      in_flight: a.in_flight,
      concurrency_limit: a.concurrency_limit,
      kv_cache_usage: a.kv_cache_usage,
    };
  });
  const queueFull = counts.activeBatches >= limits.max_queue_depth || counts.queuedRequests >= limits.max_total_queued_requests;
  if (agents.length === 0) reasons.push("no live agent");
  for (const a of agents) if (a.claims_paused_reason !== null) reasons.push(`agent ${a.id} paused: ${a.claims_paused_reason}`);
  if (counts.activeBatches >= limits.max_queue_depth) reasons.push(`queue full: active batches at ${counts.activeBatches} (limit ${limits.max_queue_depth})`);
  if (counts.queuedRequests >= limits.max_total_queued_requests) {
    reasons.push(`queue full: queued requests at ${counts.queuedRequests} (limit ${limits.max_total_queued_requests})`);
  }
  return {
    status: reasons.some((r) => r.endsWith("unreachable")) ? "unhealthy" : reasons.length > 0 ? "degraded" : "healthy",
    reasons,
    gpu,
    ...(full ? { workers } : {}),
    queue: {
      active_jobs: counts.activeBatches,
      max_queue_depth: limits.max_queue_depth,
      queue_available: !queueFull,
      total_queued_requests: counts.queuedRequests,
      oldest_waiting_seconds: counts.oldestWaiting === null ? null : Math.max(0, seconds(now.getTime() - counts.oldestWaiting.getTime())),
    },
    limits,
  };
}

/** Memory in use in percent, to one decimal. */
function memoryPercent(g: Parameters<typeof gpuMemoryPercent>[0]): number | null {
  const p = gpuMemoryPercent(g);
  return p === null ? null : Math.round(p * 10) / 10;
}

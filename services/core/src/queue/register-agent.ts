import type { Db } from "../db/connect.js";
import type { GpuReading } from "../db/schema.js";

/** What an agent reports on each heartbeat besides its models; all null where it knows nothing. */
export interface AgentHeartbeat {
  /** Its GPUs as last read (null: no nvidia-smi, or the reading failed). */
  gpus: GpuReading[] | null;
  /** The engine's KV-cache usage, 0-1, as last read from its /metrics. */
  kvCacheUsage: number | null;
  inFlight: number | null;
  concurrencyLimit: number | null;
  /** Why it claims no new chunks (a hot GPU); null while it claims. */
  claimsPausedReason: string | null;
}

/**
 * Records an agent, the models its engine serves, its heartbeat state and that it is alive now
 * (insert or refresh, one statement).
 * Why: operators, `/health` and the metrics read who serves what and how from `agents`; an agent
 * re-registers on every heartbeat, so a restarted engine's new model list, a GPU that got hot
 * and a lapsed agent all show there.
 */
export async function registerAgent(db: Db, agent: { id: string; hostname: string; models: string[] } & Partial<AgentHeartbeat>): Promise<void> {
  const row = {
    models: JSON.stringify(agent.models),
    hostname: agent.hostname,
    last_seen_at: new Date(),
    gpus: agent.gpus ? JSON.stringify(agent.gpus) : null,
    kv_cache_usage: agent.kvCacheUsage ?? null,
    in_flight: agent.inFlight ?? null,
    concurrency_limit: agent.concurrencyLimit ?? null,
    claims_paused_reason: agent.claimsPausedReason ?? null,
  };
  await db
    .insertInto("agents")
    .values({ id: agent.id, ...row })
    .onConflict((oc) => oc.column("id").doUpdateSet(row))
    .execute();
}

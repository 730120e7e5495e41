import { sql } from "kysely";
import type { Db } from "../db/connect.js";
import type { ChunkRow } from "../db/schema.js";

/**
 * Chunks read per waiting tenant before the fair order is taken. Only rows other claimers hold
 * locked (or claimed since this statement's snapshot) are passed over, one per claim in flight;
 * past that, the statement falls back to any unlocked chunk rather than return nothing.
 */
const CANDIDATES_PER_TENANT = 16;

/**
 * Leases the next runnable chunk for an agent serving `models`: the fair-share tenant's most
 * urgent chunk.
 *
 * Why this order: each tenant on a model has a virtual time (`tenant_shares.pass`) that a claim
 * advances by the chunk's requests over the tenant's weight (stride scheduling), and the tenant
 * furthest behind claims next; ties go to the tenant served longest ago, then the tenant id. So
 * claims split by weight however many chunks each agent holds (an agent holds one or two, so a
 * count of chunks in flight would only alternate), and a tenant arriving behind another's huge
 * batch starts at the model's clock (the latest claim's start), waiting about one chunk instead
 * of the whole batch, while one coming back after a pause cannot replay its idle time. Within a
 * tenant: the earliest deadline (`expires_at`), then priority, then batch age and chunk order.
 *
 * Why one statement: FOR UPDATE SKIP LOCKED lets any number of agents claim at once without
 * blocking or double-claiming. The waiting tenants come from `chunks_fair` one index probe each
 * (a loose scan), and each tenant's first chunks from the same index already in order, so no
 * claim sorts the queue. When every candidate is locked the fallback takes any unlocked chunk.
 * The share's upsert reads the row's latest version, so racing claims of one tenant both count.
 * Bumping `fence` makes every write of the previous holder (if any) fail its fenced WHERE. A
 * paused batch keeps its chunks `queued` (so a resume needs no second write) and is skipped
 * here instead. The batch's timeline gets a `chunk_claimed` entry from the same statement, so a
 * claim and its entry commit together; and a `poison_chunk` one when the chunk reached
 * `poisonAt` failures (CHUNK_MAX_ATTEMPTS) or holds results Postgres refused, the claims whose
 * run fails its remaining requests unsent.
 */
export async function claimChunk(
  db: Db,
  args: { agentId: string; models: string[]; leaseSeconds: number; poisonAt?: number },
): Promise<ChunkRow | undefined> {
  if (args.models.length === 0) return undefined;
  const { rows } = await sql<ChunkRow>`
    WITH RECURSIVE waiting (model, tenant) AS (
      SELECT m.model, (SELECT min(c.tenant) FROM chunks c WHERE c.status = 'queued' AND c.model = m.model)
      FROM unnest(${args.models}::text[]) AS m (model)
      UNION ALL
      SELECT w.model, (SELECT min(c.tenant) FROM chunks c WHERE c.status = 'queued' AND c.model = w.model AND c.tenant > w.tenant)
      FROM waiting w WHERE w.tenant IS NOT NULL
    ), candidates AS (
      SELECT w.model, w.tenant, c.batch_id, c.idx, c.expires_at, c.priority, c.batch_created_at
      FROM waiting w CROSS JOIN LATERAL (
        SELECT c.batch_id, c.idx, c.expires_at, c.priority, c.batch_created_at FROM chunks c
        WHERE c.status = 'queued' AND c.model = w.model AND c.tenant = w.tenant
          AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = c.batch_id AND b.paused_at IS NOT NULL)
        ORDER BY c.expires_at, c.priority DESC, c.batch_created_at, c.batch_id, c.idx
        LIMIT ${CANDIDATES_PER_TENANT}
      ) c
    ), clocks AS (
      SELECT model, max(last_start) AS clock FROM tenant_shares WHERE model = ANY(${args.models}::text[]) GROUP BY model
    ), standing AS (
      SELECT w.model, w.tenant, s.last_claimed_at,
        round(greatest(coalesce(s.pass, 0), coalesce(k.clock, 0))::numeric, 6) AS pass
      FROM (SELECT DISTINCT model, tenant FROM candidates) w
      LEFT JOIN tenant_shares s ON s.tenant = w.tenant AND s.model = w.model
      LEFT JOIN clocks k ON k.model = w.model
    ), fair AS (
      SELECT c.batch_id, c.idx FROM candidates x
      JOIN standing st ON st.model = x.model AND st.tenant = x.tenant
      JOIN chunks c ON c.batch_id = x.batch_id AND c.idx = x.idx
      WHERE c.status = 'queued'
      ORDER BY st.pass, st.last_claimed_at NULLS FIRST, st.tenant,
        x.expires_at, x.priority DESC, x.batch_created_at, x.batch_id, x.idx
      LIMIT 1
      FOR UPDATE OF c SKIP LOCKED
    ), fallback AS (
      SELECT batch_id, idx FROM chunks
      WHERE status = 'queued' AND model = ANY(${args.models}::text[]) AND NOT EXISTS (SELECT 1 FROM fair)
        AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = chunks.batch_id AND b.paused_at IS NOT NULL)
      ORDER BY model, tenant, expires_at, priority DESC, batch_created_at, batch_id, idx
      LIMIT 1
      FOR UPDATE SKIP LOCKED
    ), next AS (
      SELECT * FROM fair UNION ALL SELECT * FROM fallback
    ), claimed AS (
      UPDATE chunks c
      SET status = 'leased',
          leased_by = ${args.agentId},
          lease_expires_at = now() + make_interval(secs => ${args.leaseSeconds}),
          fence = c.fence + 1,
          attempts = c.attempts + 1,
          updated_at = now()
      FROM next
      WHERE c.batch_id = next.batch_id AND c.idx = next.idx
      RETURNING c.*
    ), shares AS (
      INSERT INTO tenant_shares AS s (tenant, model, last_start, pass, last_claimed_at)
      SELECT c.tenant, c.model, coalesce(k.clock, 0),
        coalesce(k.clock, 0) + c.request_count / coalesce((SELECT t.weight FROM tenants t WHERE t.tenant = c.tenant), 1),
        now()
      FROM claimed c LEFT JOIN clocks k ON k.model = c.model
      ON CONFLICT (tenant, model) DO UPDATE
      SET last_start = greatest(s.pass, excluded.last_start),
          pass = greatest(s.pass, excluded.last_start) + (excluded.pass - excluded.last_start),
          last_claimed_at = excluded.last_claimed_at
    ), events AS (
      INSERT INTO batch_events (batch_id, kind, data)
      SELECT batch_id, 'chunk_claimed', jsonb_build_object('chunk', idx, 'agent', leased_by, 'attempt', attempts) FROM claimed
      UNION ALL
      SELECT batch_id, 'poison_chunk', jsonb_build_object(
        'chunk', idx, 'failures', failures,
        'code', CASE WHEN unstorable_error IS NOT NULL THEN 'unstorable_result' ELSE 'chunk_failed' END
      )
      FROM claimed WHERE unstorable_error IS NOT NULL OR failures >= ${args.poisonAt ?? null}::int
    )
    SELECT * FROM claimed
  `.execute(db);
  return rows[0];
}

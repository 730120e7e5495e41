import { sql } from "kysely";
import { ACTIVE_BATCH_STATUSES, RateLimited, type Db, type TenantLimits } from "@barge/core";

/** What a tenant at its active or queued quota is told to wait; its own queue drains at the fleet's pace. */
const QUOTA_RETRY_AFTER_SECONDS = 60;

/** Seconds from `now` to the next UTC midnight, when a day's quota starts afresh. */
export function secondsToUtcMidnight(now: Date): number {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Math.max(1, Math.ceil((next - now.getTime()) / 1000));
}

/**
 * Refuses a tenant's new batch (429, naming the limit) while it has made `batches_per_day`
 * batches this UTC day, runs `max_active_batches`, or has `max_queued_requests` requests enqueued
 * and not yet run. Why a per-tenant advisory lock first, inside the creating transaction: racing
 * creates of one tenant, on any replica, then count one another, while other tenants' creates
 * never wait on it. Callers take it before the deployment's own lock (`admitBatch`), always in
 * that order, so two creates never wait on each other's lock. A batch still validating counts as
 * a batch but adds no queued requests, as in `admitBatch`.
 */
export async function admitTenantBatch(db: Db, tenant: string, limits: TenantLimits): Promise<void> {
  const { batches_per_day: perDay, max_active_batches: maxActive, max_queued_requests: maxQueued } = limits;
  if (perDay === null && maxActive === null && maxQueued === null) return;
  await sql`SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.tenant_admission.' || ${tenant}))`.execute(db);
  if (perDay !== null) {
    const today = await db
      .selectFrom("batches")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("tenant", "=", tenant)
      .where("created_at", ">=", sql<Date>`date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'`)
      .executeTakeFirstOrThrow();
    if (today.n >= perDay) {
      throw new RateLimited(
        `Tenant '${tenant}' has created ${today.n} batches today (UTC), its batches_per_day limit of ${perDay}; retry after midnight UTC.`,
        secondsToUtcMidnight(new Date()),
        "batches_per_day_exceeded",
      );
    }
  }
  if (maxActive !== null) {
    const active = await db
      .selectFrom("batches")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("tenant", "=", tenant)
      .where("status", "in", ACTIVE_BATCH_STATUSES)
      .executeTakeFirstOrThrow();
    if (active.n >= maxActive) {
      throw new RateLimited(
        `Tenant '${tenant}' has ${active.n} active batches, its max_active_batches limit of ${maxActive}; retry once some have finished.`,
        QUOTA_RETRY_AFTER_SECONDS,
        "max_active_batches_exceeded",
      );
    }
  }
  if (maxQueued !== null) {
    const queued = await db
      .selectFrom("chunks")
      .select(sql<number>`coalesce(sum(request_count - committed), 0)::int8`.as("n"))
      .where("tenant", "=", tenant)
      .where("status", "in", ["queued", "leased"])
      .executeTakeFirstOrThrow();
    if (queued.n >= maxQueued) {
      throw new RateLimited(
        `Tenant '${tenant}' has ${queued.n} requests queued, at or above its max_queued_requests limit of ${maxQueued}; retry once some have run.`,
        QUOTA_RETRY_AFTER_SECONDS,
        "max_queued_requests_exceeded",
      );
    }
  }
}

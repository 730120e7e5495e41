import { sql } from "kysely";
import type { Db } from "../db/connect.js";

/** The answer of one take: whether it was allowed, and what OpenAI's rate-limit headers report. */
export interface RateToken {
  allowed: boolean;
  /** Requests per window. */
  limit: number;
  /** Requests still allowed at once after this one. */
  remaining: number;
  /** Seconds until the limit is whole again (`x-ratelimit-reset-requests`). */
  resetSeconds: number;
  /** Seconds until a refused request would be allowed; 0 when allowed. */
  retryAfterSeconds: number;
}

/**
 * Takes one token of a tenant's `limit`-per-`windowSeconds` rate limit `name`, with a burst of
 * `limit`: GCRA on the row's theoretical arrival time (`tat`). Why one upsert whose update is
 * guarded by the check: the row lock serializes racing takes on every replica, and each one
 * sees the `tat` the previous committed, so exactly `limit` of a burst pass. Why
 * clock_timestamp(): the guard and the update are evaluated once the row lock is held, so takes
 * that queued on the lock see time in the order they take; the statement's start time would
 * make a late-locking take look early and refuse it wrongly. Time is the database's, so
 * replicas' clocks never matter. A refused take changes nothing; its `tat` is read from the
 * statement's snapshot, where a take racing it may not show yet: its wait is then a little
 * short (the retry is refused again), or, before the row's first commit, one interval.
 */
export async function takeRateToken(db: Db, o: { tenant: string; name: string; limit: number; windowSeconds: number }): Promise<RateToken> {
  const interval = o.windowSeconds / o.limit;
  const step = sql`make_interval(secs => ${interval})`;
  const { rows } = await sql<{ allowed: boolean; ahead: number }>`
    WITH taken AS (
      INSERT INTO rate_limits AS r (tenant, name, tat)
      VALUES (${o.tenant}, ${o.name}, clock_timestamp() + ${step})
      ON CONFLICT (tenant, name) DO UPDATE
        SET tat = greatest(r.tat, clock_timestamp()) + ${step}
        WHERE greatest(r.tat, clock_timestamp()) + ${step} <= clock_timestamp() + make_interval(secs => ${o.windowSeconds})
      RETURNING r.tat, clock_timestamp() AS now
    )
    SELECT true AS allowed, extract(epoch FROM tat - now)::float8 AS ahead FROM taken
    UNION ALL
    SELECT false, extract(epoch FROM r.tat - clock_timestamp())::float8 FROM rate_limits r
    WHERE r.tenant = ${o.tenant} AND r.name = ${o.name} AND NOT EXISTS (SELECT 1 FROM taken)
  `.execute(db);
  const row = rows[0] ?? { allowed: false, ahead: o.windowSeconds };
  // `ahead` is how far the arrival time runs ahead of now: the window holds `limit` intervals of it.
  const ahead = Math.max(0, row.ahead);
  return {
    allowed: row.allowed,
    limit: o.limit,
    remaining: row.allowed ? Math.max(0, Math.floor((o.windowSeconds - ahead) / interval + 1e-9)) : 0,
    resetSeconds: ahead,
    retryAfterSeconds: row.allowed ? 0 : Math.max(0, ahead + interval - o.windowSeconds),
  };
}

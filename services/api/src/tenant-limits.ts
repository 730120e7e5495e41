import type { Context, MiddlewareHandler } from "hono";
import { effectiveLimits, InvalidRequest, RateLimited, takeRateToken, type Db, type RateToken, type TenantLimits } from "@barge/core";
import { tenantOf } from "./auth.js";
import type { ApiDeps, AppEnv } from "./deps.js";
import { admitBatch } from "./store/batches.js";
import { admitTenantBatch } from "./store/tenant-quotas.js";
import { findTenantSettings } from "./store/tenants.js";

/** The per-minute limits the rate limiter enforces, by their name in `tenants.limits`. */
export type RateLimitName = "batch_creates_per_minute" | "file_uploads_per_minute";

const WINDOW_SECONDS = 60;

/** What each rate limit counts, for the 429's message. */
const COUNTED: Record<RateLimitName, string> = {
  batch_creates_per_minute: "batch creates",
  file_uploads_per_minute: "file uploads",
};

/** The limits in force for `tenant`: the admin's overrides over the TENANT_* defaults, read per request so a change holds at once. */
export async function tenantLimits(deps: Pick<ApiDeps, "config">, db: Db, tenant: string): Promise<TenantLimits> {
  return effectiveLimits(deps.config, (await findTenantSettings(db, tenant)).overrides);
}

/** A duration as OpenAI's rate-limit headers write it (`6s`, `1m0s`, `1h2m3s`), in whole seconds rounded up. */
export function openAiDuration(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds - 1e-6));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (h > 0) return `${h}h${m}m${rest}s`;
  if (m > 0) return `${m}m${rest}s`;
  return `${rest}s`;
}

/** OpenAI's request rate-limit headers for one take. */
function rateHeaders(t: RateToken): Record<string, string> {
  return {
    "x-ratelimit-limit-requests": String(t.limit),
    "x-ratelimit-remaining-requests": String(t.remaining),
    "x-ratelimit-reset-requests": openAiDuration(t.resetSeconds),
  };
}

/**
 * Takes a token of each per-minute limit `names(c)` picks for the request, before the handler
 * reads any of the body, so a throttled upload never reaches S3. A refusal is OpenAI's 429
 * `rate_limit_error` with Retry-After and the x-ratelimit headers; an allowed request gets the
 * headers of its tightest limit. An unlimited (null) limit takes nothing.
 */
export function rateLimit(deps: ApiDeps, names: (c: Context<AppEnv>) => RateLimitName[]): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const tenant = tenantOf(c);
    const limits = await tenantLimits(deps, deps.db, tenant);
    let tightest: RateToken | undefined;
    for (const name of names(c)) {
      const limit = limits[name];
      if (limit === null) continue;
      const t = await takeRateToken(deps.db, { tenant, name, limit, windowSeconds: WINDOW_SECONDS });
      if (!t.allowed) {
        const wait = Math.max(1, Math.ceil(t.retryAfterSeconds - 1e-6));
        throw new RateLimited(
          `Rate limit reached for ${COUNTED[name]} (${name}): limit ${limit} per minute. Please try again in ${wait}s.`,
          wait,
          "rate_limit_exceeded",
          rateHeaders(t),
        );
      }
      if (!tightest || t.remaining < tightest.remaining) tightest = t;
    }
    if (tightest) for (const [k, v] of Object.entries(rateHeaders(tightest))) c.header(k, v);
    await next();
  };
}

/** Why `asked` is above the tenant's `max_priority`, or null when it is not. */
export function priorityOverCap(asked: number | undefined, limits: Pick<TenantLimits, "max_priority">): string | null {
  const cap = limits.max_priority;
  return asked !== undefined && cap !== null && asked > cap ? `priority ${asked} is above this tenant's cap of ${cap} (max_priority).` : null;
}

/**
 * The priority a batch runs at under the tenant's `max_priority`: a priority asked above the cap
 * is a 400 naming it; an absent one is the default 0, lowered to the cap when the cap is below it.
 */
export function cappedPriority(asked: number | undefined, limits: Pick<TenantLimits, "max_priority">): number {
  const over = priorityOverCap(asked, limits);
  if (over !== null) throw new InvalidRequest(over, "priority", "priority_above_cap");
  const cap = limits.max_priority;
  return asked ?? (cap === null ? 0 : Math.min(0, cap));
}

/**
 * Admits a new batch of `tenant` inside its creating transaction: the tenant's quotas under its
 * own lock, then the deployment's (`admitBatch`), always in that order so no two creates wait on
 * each other's lock.
 */
export async function admitNewBatch(deps: Pick<ApiDeps, "config">, tx: Db, tenant: string, limits: TenantLimits): Promise<void> {
  await admitTenantBatch(tx, tenant, limits);
  await admitBatch(tx, { maxActive: deps.config.MAX_ACTIVE_BATCHES, maxQueued: deps.config.MAX_QUEUED_REQUESTS });
}

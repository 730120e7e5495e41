import { z } from "zod";

/**
 * A tenant's name: it is part of S3 keys (`inputs/<tenant>/…`) and of the trigger's inbox
 * (`inbox/<tenant>/…`), so it is kept to characters that are safe in both.
 */
export const tenantName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, "a tenant is 1 to 64 letters, digits, '-' or '_', starting with a letter or digit");

/** The limits an admin may set per tenant, by their name in `PUT /v1/admin/tenants/{tenant}` and in `tenants.limits`. */
export const TENANT_LIMIT_NAMES = [
  "batch_creates_per_minute",
  "file_uploads_per_minute",
  "batches_per_day",
  "max_active_batches",
  "max_queued_requests",
  "max_priority",
] as const;
export type TenantLimitName = (typeof TENANT_LIMIT_NAMES)[number];

/** A tenant's limits in force: null is unlimited. */
export type TenantLimits = Record<TenantLimitName, number | null>;

/** The environment's defaults, one per limit (`TENANT_*`). */
export interface TenantLimitDefaults {
  TENANT_BATCH_CREATES_PER_MINUTE?: number;
  TENANT_FILE_UPLOADS_PER_MINUTE?: number;
  TENANT_BATCHES_PER_DAY?: number;
  TENANT_MAX_ACTIVE_BATCHES?: number;
  TENANT_MAX_QUEUED_REQUESTS?: number;
  TENANT_MAX_PRIORITY?: number;
}

const DEFAULT_OF: Record<TenantLimitName, keyof TenantLimitDefaults> = {
  batch_creates_per_minute: "TENANT_BATCH_CREATES_PER_MINUTE",
  file_uploads_per_minute: "TENANT_FILE_UPLOADS_PER_MINUTE",
  batches_per_day: "TENANT_BATCHES_PER_DAY",
  max_active_batches: "TENANT_MAX_ACTIVE_BATCHES",
  max_queued_requests: "TENANT_MAX_QUEUED_REQUESTS",
  max_priority: "TENANT_MAX_PRIORITY",
};

/** What an admin stores per limit: a number, or null for unlimited; an absent limit takes the default. */
export const tenantLimitOverrides = z
  .object({
    batch_creates_per_minute: z.number().int().min(1).max(1_000_000).nullable(),
    file_uploads_per_minute: z.number().int().min(1).max(1_000_000).nullable(),
    batches_per_day: z.number().int().min(1).max(100_000_000).nullable(),
    max_active_batches: z.number().int().min(1).max(1_000_000).nullable(),
    max_queued_requests: z.number().int().min(1).max(1_000_000_000_000).nullable(),
    max_priority: z.number().int().min(-1000).max(1000).nullable(),
  })
  .partial()
  .strict();
export type TenantLimitOverrides = z.infer<typeof tenantLimitOverrides>;

/** The limits in force for a tenant: its overrides where set, the environment's defaults elsewhere. */
export function effectiveLimits(defaults: TenantLimitDefaults, overrides: TenantLimitOverrides | undefined): TenantLimits {
  const out = {} as TenantLimits;
  for (const name of TENANT_LIMIT_NAMES) {
    const own = overrides?.[name];
    out[name] = own !== undefined ? own : (defaults[DEFAULT_OF[name]] ?? null);
  }
  return out;
}

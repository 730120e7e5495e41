import type { ColumnType } from "kysely";
import type { CreatedAt, Timestamp } from "./column-types.js";

// The tables about teams: who may call, what each tenant may do, its share of the GPUs and what it used.

/** A tenant's API key; only its SHA-256 hash is kept. */
export interface ApiKeysTable {
  id: string;
  tenant: string;
  name: string;
  key_hash: string;
  /** What listings show instead of the secret, e.g. `sk-…abcd`. */
  redacted: string;
  created_at: CreatedAt;
  revoked_at: Timestamp | null;
}

/** What the admin set for a tenant; a tenant without a row has weight 1 and the TENANT_* defaults. */
export interface TenantsTable {
  tenant: string;
  weight: ColumnType<number, number | undefined, number>;
  /** Overrides by limit name: an absent key takes the default, null means unlimited (see `domain/tenant-limits.ts`). */
  limits: ColumnType<Record<string, number | null>, string | undefined, string>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}

/** GCRA state: the theoretical arrival time of the next request under limit `name`. */
export interface RateLimitsTable {
  tenant: string;
  name: string;
  tat: Timestamp;
}

/** The fair-share claim's virtual time of a tenant on a model. */
export interface TenantSharesTable {
  tenant: string;
  model: string;
  /** Where its next claim starts: the requests it claimed over its weight. */
  pass: ColumnType<number, number | undefined, number>;
  /** Where its last claim started; the largest on a model is that model's clock. */
  last_start: ColumnType<number, number | undefined, number>;
  last_claimed_at: Timestamp | null;
}

/** Committed usage of one batch on one UTC day. */
export interface TenantUsageTable {
  day: ColumnType<string, string, string>;
  tenant: string;
  model: string;
  batch_id: string;
  requests: ColumnType<number, number | undefined, number>;
  failed: ColumnType<number, number | undefined, number>;
  prompt_tokens: ColumnType<number, number | undefined, number>;
  completion_tokens: ColumnType<number, number | undefined, number>;
  cached_tokens: ColumnType<number, number | undefined, number>;
  reasoning_tokens: ColumnType<number, number | undefined, number>;
}

import { sql } from "kysely";
import { tenantLimitOverrides, type Db, type TenantLimitName, type TenantLimitOverrides } from "@barge/core";

/** What the admin set for a tenant: its share weight and its limit overrides (absent: the default; null: unlimited). */
export interface TenantSettings {
  weight: number;
  overrides: TenantLimitOverrides;
}

/** A tenant's settings with what the admin routes show beside them. */
export interface TenantView extends TenantSettings {
  tenant: string;
  /** Unrevoked keys of the tenant. */
  keys: number;
  /** When the admin last set something; null for a tenant never set. */
  updated_at: Date | null;
}

/** A tenant without a row: weight 1 and every default. */
const UNSET: TenantSettings = { weight: 1, overrides: {} };

/** The stored overrides, checked again on the way out: the column is jsonb, the shape is ours. */
const overridesOf = (limits: unknown): TenantLimitOverrides => tenantLimitOverrides.parse(limits ?? {});

/** A tenant's weight and limit overrides; any name is a tenant, so one never set has the defaults. */
export async function findTenantSettings(db: Db, tenant: string): Promise<TenantSettings> {
  const row = await db.selectFrom("tenants").select(["weight", "limits"]).where("tenant", "=", tenant).executeTakeFirst();
  return row ? { weight: row.weight, overrides: overridesOf(row.limits) } : UNSET;
}

/** Tenants that have a row or a key (only `tenant`, when given), as the admin routes show them, by name. */
async function views(db: Db, tenant?: string): Promise<TenantView[]> {
  let query = db
    .selectFrom((eb) => eb.selectFrom("tenants").select("tenant").union(eb.selectFrom("api_keys").select("tenant")).as("n"))
    .leftJoin("tenants as t", "t.tenant", "n.tenant")
    .select((eb) => [
      "n.tenant as tenant",
      "t.weight",
      "t.limits",
      "t.updated_at",
      eb
        .selectFrom("api_keys as k")
        .select(eb.fn.countAll<string>().as("c"))
        .whereRef("k.tenant", "=", "n.tenant")
        .where("k.revoked_at", "is", null)
        .as("keys"),
    ]);
  if (tenant !== undefined) query = query.where("n.tenant", "=", tenant);
  const rows = await query.orderBy("n.tenant").execute();
  return rows.map((r) => ({
    tenant: r.tenant,
    weight: r.weight ?? UNSET.weight,
    overrides: overridesOf(r.limits),
    keys: Number(r.keys ?? 0),
    updated_at: r.updated_at,
  }));
}

/** One tenant as the admin routes show it; any name is a tenant, so one never set shows the defaults. */
export async function findTenantView(db: Db, tenant: string): Promise<TenantView> {
  const [view] = await views(db, tenant);
  return view ?? { tenant, ...UNSET, keys: 0, updated_at: null };
}

/** Every tenant the admin set or made a key for (revoked keys included), by name. */
export function listTenantViews(db: Db): Promise<TenantView[]> {
  return views(db);
}

/** A change to a tenant's settings: a new weight, overrides to set, overrides to drop back to the default. */
export interface TenantPatch {
  weight?: number | undefined;
  set: TenantLimitOverrides;
  drop: TenantLimitName[];
}

/**
 * Applies a patch in one statement, merging into what is stored, so two admins setting
 * different limits at once both keep theirs.
 */
export async function updateTenant(db: Db, tenant: string, patch: TenantPatch): Promise<void> {
  await db
    .insertInto("tenants")
    .values({ tenant, weight: patch.weight ?? UNSET.weight, limits: JSON.stringify(patch.set) })
    .onConflict((oc) =>
      oc.column("tenant").doUpdateSet({
        weight: patch.weight === undefined ? sql<number>`tenants.weight` : sql<number>`excluded.weight`,
        limits: sql<string>`(tenants.limits || excluded.limits) - ${patch.drop}::text[]`,
        updated_at: sql<Date>`now()`,
      }),
    )
    .execute();
}

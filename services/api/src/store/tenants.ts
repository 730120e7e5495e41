import { tenantLimitOverrides, type Db, type TenantLimitOverrides } from "@barge/core";

/** What the admin set for a tenant: its weight and limit overrides; weight 1 and no overrides when it has no row. */
export async function findTenantSettings(db: Db, tenant: string): Promise<{ weight: number; overrides: TenantLimitOverrides }> {
  const row = await db.selectFrom("tenants").select(["weight", "limits"]).where("tenant", "=", tenant).executeTakeFirst();
  if (!row) return { weight: 1, overrides: {} };
  return { weight: row.weight, overrides: tenantLimitOverrides.parse(row.limits) };
}

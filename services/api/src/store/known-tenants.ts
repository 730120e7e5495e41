import { sql } from "kysely";
import type { Db } from "@barge/core";

/**
 * Whether `tenant` is known: it has a `tenants` row or any API key, revoked ones included, so a
 * tenant whose keys were all revoked still owns its inbox folder rather than leaving it to
 * BARGE_TENANT. One statement; both lookups use a primary key or index prefix.
 */
export async function isKnownTenant(db: Db, tenant: string): Promise<boolean> {
  const { rows } = await sql<{ known: boolean }>`
    SELECT EXISTS (SELECT 1 FROM tenants WHERE tenant = ${tenant})
        OR EXISTS (SELECT 1 FROM api_keys WHERE tenant = ${tenant}) AS known
  `.execute(db);
  return rows[0]!.known;
}

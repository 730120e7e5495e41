import { createHash } from "node:crypto";
import type { Db } from "@barge/core";

/** The stored form of a key: its SHA-256, hex. The secret itself is never stored. */
export function keyHash(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** The tenant an unrevoked key acts as, or undefined. Read on every request, so a revoke holds at once on every replica. */
export async function tenantOfKey(db: Db, key: string): Promise<{ id: string; tenant: string } | undefined> {
  return db
    .selectFrom("api_keys")
    .select(["id", "tenant"])
    .where("key_hash", "=", keyHash(key))
    .where("revoked_at", "is", null)
    .executeTakeFirst();
}

/** Whether any tenant key is in force: then the API is never open, even with no key in the environment. */
export async function anyActiveKey(db: Db): Promise<boolean> {
  const row = await db.selectFrom("api_keys").select("id").where("revoked_at", "is", null).limit(1).executeTakeFirst();
  return row !== undefined;
}

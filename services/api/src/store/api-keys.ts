import { createHash } from "node:crypto";
import { sql } from "kysely";
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

/** An API key's row as listings show it: everything but the hash. */
export type ApiKeyRow = { id: string; tenant: string; name: string; redacted: string; created_at: Date; revoked_at: Date | null };

const KEY_COLUMNS = ["id", "tenant", "name", "redacted", "created_at", "revoked_at"] as const;

/** Stores a new key by its hash and redacted form only. */
export function insertApiKey(db: Db, key: { id: string; tenant: string; name: string; secret: string; redacted: string }): Promise<ApiKeyRow> {
  return db
    .insertInto("api_keys")
    .values({ id: key.id, tenant: key.tenant, name: key.name, key_hash: keyHash(key.secret), redacted: key.redacted })
    .returning(KEY_COLUMNS)
    .executeTakeFirstOrThrow();
}

/** One page of keys, revoked ones included, by id (newest first), optionally of one tenant, after a cursor. */
export async function listApiKeys(
  db: Db,
  q: { tenant?: string | undefined; after?: string | undefined; limit: number },
): Promise<{ rows: ApiKeyRow[]; hasMore: boolean }> {
  let query = db.selectFrom("api_keys").select(KEY_COLUMNS);
  if (q.tenant !== undefined) query = query.where("tenant", "=", q.tenant);
  if (q.after !== undefined) query = query.where("id", "<", q.after);
  const rows = await query.orderBy("id", "desc").limit(q.limit + 1).execute();
  return { rows: rows.slice(0, q.limit), hasMore: rows.length > q.limit };
}

/** Revokes a key; revoking it again keeps its first revocation time. Undefined when no such key exists. */
export function revokeApiKey(db: Db, id: string): Promise<ApiKeyRow | undefined> {
  return db
    .updateTable("api_keys")
    .set({ revoked_at: sql<Date>`coalesce(revoked_at, now())` })
    .where("id", "=", id)
    .returning(KEY_COLUMNS)
    .executeTakeFirst();
}

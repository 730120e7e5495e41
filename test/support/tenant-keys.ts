import { randomBytes } from "node:crypto";
import { keyHash } from "@barge/api/testing";
import type { Db } from "@barge/core";

// Tenant keys as `POST /v1/admin/keys` stores them (hash only), inserted straight into `api_keys`.

/** Stores a new key of `tenant` and returns its secret; `revoked` stores it revoked already. */
export async function storeTenantKey(db: Db, tenant: string, o: { revoked?: boolean } = {}): Promise<string> {
  const key = `sk-${tenant}-${randomBytes(12).toString("hex")}`;
  await db
    .insertInto("api_keys")
    .values({
      id: `key_${randomBytes(8).toString("hex")}`,
      tenant,
      name: `${tenant} test key`,
      key_hash: keyHash(key),
      redacted: `sk-…${key.slice(-4)}`,
      revoked_at: o.revoked ? new Date() : null,
    })
    .execute();
  return key;
}

/** An `Authorization` header for `key`. */
export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

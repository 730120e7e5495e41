import { randomBytes } from "node:crypto";
import { Hono } from "hono";
import { z } from "zod";
import { newId, NotFound, tenantName } from "@barge/core";
import type { ApiDeps, AppEnv } from "../deps.js";
import { knownId, safeText } from "../params.js";
import { listPage } from "../present.js";
import { insertApiKey, listApiKeys, revokeApiKey, type ApiKeyRow } from "../store/api-keys.js";
import { readJson, readQuery } from "../validation.js";

/** `POST /v1/admin/keys`: whose key it is and a name to tell it by. */
export const createKeyBody = z
  .object({
    tenant: tenantName,
    name: safeText.min(1).max(128),
  })
  .strict();

/** `GET /v1/admin/keys`: one tenant's keys, or all, a page at a time. */
export const keysListQuery = z.object({
  tenant: tenantName.optional(),
  after: safeText.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** 32 random bytes: as strong as the SHA-256 the key is stored as. */
const SECRET_BYTES = 32;

/** A new key's secret: a recognisable prefix (secret scanners look for such) and 32 random bytes. */
function newSecret(): string {
  return `sk-barge-${randomBytes(SECRET_BYTES).toString("base64url")}`;
}

/** What listings show for a secret: enough to tell keys apart, never enough to use one. */
function redact(secret: string): string {
  return `sk-…${secret.slice(-4)}`;
}

const unix = (d: Date) => Math.floor(d.getTime() / 1000);

function toApiKey(row: ApiKeyRow) {
  return {
    id: row.id,
    object: "api_key" as const,
    tenant: row.tenant,
    name: row.name,
    redacted: row.redacted,
    created_at: unix(row.created_at),
    revoked_at: row.revoked_at ? unix(row.revoked_at) : null,
  };
}

/** The admin's API keys: create (the secret shown once), list (redacted, revoked ones too), revoke. */
export function adminKeysRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();

  app.post("/", async (c) => {
    const body = await readJson(c, createKeyBody, deps.config);
    const secret = newSecret();
    const row = await insertApiKey(deps.db, { id: newId("key_"), tenant: body.tenant, name: body.name, secret, redacted: redact(secret) });
    return c.json({ ...toApiKey(row), key: secret }, 201);
  });

  app.get("/", async (c) => {
    const q = readQuery(c, keysListQuery);
    const { rows, hasMore } = await listApiKeys(deps.db, q);
    return c.json(listPage(rows.map(toApiKey), hasMore));
  });

  app.delete("/:id", async (c) => {
    const id = knownId(c.req.param("id"), "key_", "API key", "key_id");
    const row = await revokeApiKey(deps.db, id);
    if (!row) throw new NotFound("API key", id, "key_id");
    return c.json({ id: row.id, object: "api_key" as const, deleted: true as const });
  });

  return app;
}

import { z } from "zod";
import { TENANT_LIMIT_NAMES } from "@barge/core";

// The objects the admin routes answer with, as zod schemas (the OpenAPI document is generated from them).

const unix = z.number().int();

/** A tenant's API key as listings show it: never the secret, only its redacted form. */
export const apiKeyObject = z.object({
  id: z.string(),
  object: z.literal("api_key"),
  tenant: z.string(),
  name: z.string(),
  redacted: z.string(),
  created_at: unix,
  /** When the key was revoked; null while it works. */
  revoked_at: unix.nullable(),
});

/** The create's answer: the only time the secret is shown. */
export const createdApiKeyObject = apiKeyObject.extend({ key: z.string().describe("The secret, shown once; only its SHA-256 is stored.") });

export const apiKeyDeletedObject = z.object({ id: z.string(), object: z.literal("api_key"), deleted: z.literal(true) });

const limitValues = z.object(Object.fromEntries(TENANT_LIMIT_NAMES.map((n) => [n, z.number().int().nullable()])) as Record<(typeof TENANT_LIMIT_NAMES)[number], z.ZodNullable<z.ZodNumber>>);

/** A tenant's settings: the limits in force (null: unlimited), the admin's overrides behind them, its weight and key count. */
export const tenantObject = z.object({
  object: z.literal("tenant"),
  tenant: z.string(),
  weight: z.number(),
  limits: limitValues,
  overrides: limitValues.partial(),
  /** Unrevoked keys. */
  keys: z.number().int(),
  /** When the admin last changed the tenant; null for one never set. */
  updated_at: unix.nullable(),
});

export const tenantListObject = z.object({ object: z.literal("list"), data: z.array(tenantObject) });

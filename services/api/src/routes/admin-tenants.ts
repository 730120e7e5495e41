import { Hono } from "hono";
import { z } from "zod";
import { effectiveLimits, TENANT_LIMIT_NAMES, tenantLimitOverrides, tenantName, type TenantLimitName, type TenantLimitOverrides } from "@barge/core";
import type { ApiDeps, AppEnv } from "../deps.js";
import { findTenantView, listTenantViews, updateTenant, type TenantView } from "../store/tenants.js";
import { parseWith, readJson } from "../validation.js";

/** The value that drops an override, so the limit follows the environment's default again. */
const DEFAULT = "default";

const ONE_LIMIT = `must be a whole number, null for unlimited, or '${DEFAULT}'`;

/** Each limit as `tenantLimitOverrides` takes it (a number, or null for unlimited), or "default". */
const limitsPatch = z
  .object(
    Object.fromEntries(TENANT_LIMIT_NAMES.map((n) => [n, z.union([z.literal(DEFAULT), tenantLimitOverrides.shape[n].unwrap()], { error: ONE_LIMIT }).optional()])) as {
      [K in TenantLimitName]: z.ZodOptional<z.ZodUnion<[z.ZodLiteral<typeof DEFAULT>, z.ZodNullable<z.ZodNumber>]>>;
    },
  )
  .strict();

/** `PUT /v1/admin/tenants/{tenant}`: what to change; anything absent stays as it is. */
export const tenantPutBody = z
  .object({
    weight: z.number().gt(0).max(1000).optional(),
    limits: limitsPatch.optional(),
  })
  .strict();

/** A path's tenant: any well-formed name is a tenant, one never set has the defaults. */
const tenantParam = z.object({ tenant: tenantName });

function toTenant(config: ApiDeps["config"], v: TenantView) {
  return {
    object: "tenant" as const,
    tenant: v.tenant,
    weight: v.weight,
    limits: effectiveLimits(config, v.overrides),
    overrides: v.overrides,
    keys: v.keys,
    updated_at: v.updated_at ? Math.floor(v.updated_at.getTime() / 1000) : null,
  };
}

/** The admin's view of tenants: list, read, and set a tenant's weight and limits. */
export function adminTenantsRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();

  app.get("/", async (c) => {
    const views = await listTenantViews(deps.db);
    return c.json({ object: "list" as const, data: views.map((v) => toTenant(deps.config, v)) });
  });

  app.get("/:tenant", async (c) => {
    const { tenant } = parseWith(tenantParam, { tenant: c.req.param("tenant") });
    return c.json(toTenant(deps.config, await findTenantView(deps.db, tenant)));
  });

  app.put("/:tenant", async (c) => {
    const { tenant } = parseWith(tenantParam, { tenant: c.req.param("tenant") });
    const body = await readJson(c, tenantPutBody, deps.config);
    const set: TenantLimitOverrides = {};
    const drop: TenantLimitName[] = [];
    for (const [name, value] of Object.entries(body.limits ?? {}) as [TenantLimitName, number | null | typeof DEFAULT | undefined][]) {
      if (value === DEFAULT) drop.push(name);
      else if (value !== undefined) set[name] = value;
    }
    await updateTenant(deps.db, tenant, { weight: body.weight, set, drop });
    return c.json(toTenant(deps.config, await findTenantView(deps.db, tenant)));
  });

  return app;
}

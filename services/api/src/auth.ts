import { createHash, timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { BargeError } from "@barge/core";
import type { ApiDeps, AppEnv, Principal } from "./deps.js";
import { anyActiveKey, tenantOfKey } from "./store/api-keys.js";

const digest = (s: string) => createHash("sha256").update(s).digest();

/**
 * Whether `given` is `secret`, in constant time: comparing digests keeps the comparison
 * constant-time whatever the lengths. An empty `given` never matches.
 */
export function sameSecret(given: string, secret: string): boolean {
  return given !== "" && timingSafeEqual(digest(given), digest(secret));
}

// RFC 9110: the auth scheme is case-insensitive and one or more spaces separate it from the credentials.
const BEARER = /^bearer[ \t]+(.*)$/i;

/** The credentials of a Bearer `Authorization` header, or "" when it has none. */
export function bearerToken(header: string): string {
  return BEARER.exec(header.trim())?.[1]?.trim() ?? "";
}

/** The error a request without an acceptable key gets. */
function unauthorized(given: string): BargeError {
  return new BargeError(
    401,
    "invalid_request_error",
    given ? "Incorrect API key provided." : "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
    "invalid_api_key",
  );
}

/**
 * Who a request's bearer token is. Barge is open (every caller is BARGE_TENANT) only while no key
 * is configured anywhere: no BARGE_API_KEY, no BARGE_ADMIN_KEY and no unrevoked tenant key.
 * Otherwise the token must be BARGE_API_KEY (acting as BARGE_TENANT), BARGE_ADMIN_KEY, or an
 * unrevoked key from `POST /v1/admin/keys`; undefined when it is none of them.
 */
export async function principalOf(deps: Pick<ApiDeps, "db" | "config">, authorization: string | undefined): Promise<Principal | undefined> {
  const { BARGE_API_KEY: single, BARGE_ADMIN_KEY: admin, BARGE_TENANT: tenant } = deps.config;
  const given = bearerToken(authorization ?? "");
  if (single && sameSecret(given, single)) return { kind: "tenant", tenant, keyId: null };
  if (admin && sameSecret(given, admin)) return { kind: "admin" };
  if (given) {
    const key = await tenantOfKey(deps.db, given);
    if (key) return { kind: "tenant", tenant: key.tenant, keyId: key.id };
  }
  if (!single && !admin && !(await anyActiveKey(deps.db))) return { kind: "tenant", tenant, keyId: null };
  return undefined;
}

/**
 * Admits a request as a tenant (`tenant` routes) or as the admin (`admin` routes), and records
 * the principal and tenant it acts as. The admin key manages keys, tenants and usage and never
 * acts on a tenant's data; a tenant key never reaches the admin routes. Both refusals are 403,
 * since they say nothing about any object.
 */
export function authenticate(deps: Pick<ApiDeps, "db" | "config">, role: "tenant" | "admin"): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const authorization = c.req.header("authorization");
    // Without BARGE_ADMIN_KEY there is no admin, not even on an open API: nobody can authenticate as one.
    if (role === "admin" && !deps.config.BARGE_ADMIN_KEY) {
      throw new BargeError(401, "invalid_request_error", "The admin routes are off: this server has no BARGE_ADMIN_KEY.", "invalid_api_key");
    }
    const principal = await principalOf(deps, authorization);
    if (!principal) throw unauthorized(bearerToken(authorization ?? ""));
    if (role === "admin" && principal.kind !== "admin") {
      throw new BargeError(403, "permission_error", "Admin routes need BARGE_ADMIN_KEY; a tenant key cannot use them.", "admin_key_required");
    }
    if (role === "tenant" && principal.kind !== "tenant") {
      throw new BargeError(403, "permission_error", "The admin key manages keys, tenants and usage; it cannot act on a tenant's data. Use a tenant key.", "tenant_key_required");
    }
    c.set("principal", principal);
    if (principal.kind === "tenant") c.set("tenant", principal.tenant);
    await next();
  };
}

/** The tenant an admitted request acts as; every tenant route reads it here, never from the settings. */
export function tenantOf(c: Context<AppEnv>): string {
  const tenant = c.get("tenant");
  if (tenant === undefined) throw new Error("tenantOf: route not behind authenticate(deps, 'tenant')");
  return tenant;
}

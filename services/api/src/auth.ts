import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./deps.js";
import { sendError } from "./errors.js";

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

/**
 * Requires `Authorization: Bearer <key>` when an API key is configured (open otherwise), and
 * records the tenant an admitted request acts as.
 */
export function requireApiKey(key: string | undefined, tenant: string): MiddlewareHandler<AppEnv> {
  if (!key) {
    return (c, next) => {
      c.set("tenant", tenant);
      return next();
    };
  }
  return async (c, next) => {
    const given = bearerToken(c.req.header("authorization") ?? "");
    if (!sameSecret(given, key)) {
      return sendError(
        c,
        401,
        given ? "Incorrect API key provided." : "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
        "invalid_request_error",
        null,
        "invalid_api_key",
      );
    }
    c.set("tenant", tenant);
    await next();
  };
}

/**
 * Whether a request carries the configured API key (true when none is configured), for routes
 * open to all that show more to a caller with the key; never a 401.
 */
export function hasApiKey(key: string | undefined, authorization: string | undefined): boolean {
  if (!key) return true;
  const given = bearerToken(authorization ?? "");
  return sameSecret(given, key);
}

import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { Logger } from "@barge/core";
import type { AppEnv } from "./deps.js";

/**
 * One structured line per request: method, route pattern, status, duration and the tenant it was
 * authenticated as. Only the pattern is logged, never the raw path, query, headers or body: ids,
 * cursors and keys stay out of the log.
 */
export function accessLog(log: Logger): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    await next();
    log.info(
      {
        method: c.req.method,
        // The last matched route is the handler's pattern; with no handler (an unknown URL) it is the catch-all middleware's.
        route: routePath(c, -1),
        status: c.res.status,
        ms: Math.round((performance.now() - started) * 10) / 10,
        tenant: c.get("tenant") ?? null,
      },
      "request",
    );
  };
}

import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { ApiMetrics } from "./api-metrics.js";
import type { AppEnv } from "./deps.js";

/**
 * Counts each request and its duration by route pattern and status, as the access log names them:
 * the pattern keeps the label set bounded whatever ids or paths clients send.
 */
export function httpMetrics(metrics: ApiMetrics): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    await next();
    metrics.observeRequest(c.req.method, routePath(c, -1), c.res.status, (performance.now() - started) / 1000);
  };
}

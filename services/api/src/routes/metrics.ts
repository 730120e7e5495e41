import { Hono, type MiddlewareHandler } from "hono";
import type { ApiMetrics } from "../api-metrics.js";
import { bearerToken, sameSecret } from "../auth.js";
import type { ApiDeps, AppEnv } from "../deps.js";
import { sendError } from "../errors.js";

/** Admits a scrape carrying METRICS_TOKEN as a Bearer header; with no token set every scrape is admitted. */
function requireMetricsToken(token: string | undefined): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (token) {
      const given = bearerToken(c.req.header("authorization") ?? "");
      if (!sameSecret(given, token)) {
        c.header("WWW-Authenticate", 'Bearer realm="metrics"');
        return sendError(
          c,
          401,
          given ? "Incorrect metrics token." : "Send METRICS_TOKEN as 'Authorization: Bearer <token>'.",
          "invalid_request_error",
          null,
          "invalid_metrics_token",
        );
      }
    }
    await next();
  };
}

/**
 * `GET /metrics` in Prometheus' text format. Outside `/v1`: a scraper holds no tenant key, and
 * what it reads are aggregates (no tenant, batch or key is named), like anonymous `/health`.
 */
export function metricsRoutes(deps: ApiDeps, metrics: ApiMetrics) {
  const app = new Hono<AppEnv>();
  app.use("/", requireMetricsToken(deps.config.METRICS_TOKEN));
  app.get("/", async (c) => {
    const text = await metrics.render();
    return c.body(text, 200, { "content-type": metrics.contentType });
  });
  return app;
}

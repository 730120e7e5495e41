import { Hono } from "hono";
import { accessLog } from "./access-log.js";
import { authenticate } from "./auth.js";
import { except } from "hono/combine";
import type { ApiDeps, AppEnv } from "./deps.js";
import { errorHandler, notFoundHandler } from "./errors.js";
import { openApiDocument } from "./openapi.js";
import { batchControlsRoutes } from "./routes/batch-controls.js";
import { batchErrorsRoutes } from "./routes/batch-errors.js";
import { batchResultsRoutes } from "./routes/batch-results.js";
import { batchLogsRoutes } from "./routes/batch-logs.js";
import { batchesRoutes } from "./routes/batches.js";
import { filesRoutes } from "./routes/files.js";
import { healthRoutes, probeRoutes } from "./routes/health.js";
import { modelsRoutes } from "./routes/models.js";
import { presignRoutes } from "./routes/presign.js";
import { uploadsRoutes } from "./routes/uploads.js";
import { s3EventsRoutes } from "./routes/s3-events.js";
import { adminKeysRoutes } from "./routes/admin-keys.js";
import { adminTenantsRoutes } from "./routes/admin-tenants.js";
import { adminUsageRoutes } from "./routes/admin-usage.js";
import { ApiMetrics } from "./api-metrics.js";
import { httpMetrics } from "./http-metrics.js";
import { metricsRoutes } from "./routes/metrics.js";
import { throughputRoutes } from "./routes/throughput.js";
import { uiRoutes } from "./routes/ui.js";

/** Builds the HTTP API. `wake`, when given, nudges the validator as soon as a batch is created. */
export function createApp(deps: ApiDeps & { wake?: () => void }) {
  const app = new Hono<AppEnv>();
  app.onError(errorHandler(deps.log));
  app.notFound(notFoundHandler);
  app.use("*", accessLog(deps.log));
  const metrics = new ApiMetrics({ db: deps.db, log: deps.log, config: deps.config });
  app.use("*", httpMetrics(metrics));
  // S3 servers cannot send the API key: the event route checks S3_EVENTS_TOKEN itself.
  app.use("/v1/*", except(["/v1/s3-events", "/v1/admin/*"], authenticate(deps, "tenant")));
  app.use("/v1/admin/*", authenticate(deps, "admin"));
  app.route("/health", healthRoutes(deps));
  // Built once: it depends on nothing but the schemas.
  const openapi = openApiDocument();
  app.get("/openapi.json", (c) => c.json(openapi));
  app.route("/v1/files", presignRoutes(deps));
  app.route("/v1/files", filesRoutes(deps));
  app.route("/v1/uploads", uploadsRoutes(deps));
  app.route("/v1/batches", batchesRoutes(deps));
  app.route("/v1/batches", batchErrorsRoutes(deps));
  app.route("/v1/batches", batchResultsRoutes(deps));
  app.route("/v1/batches", batchControlsRoutes(deps));
  app.route("/v1/batches", batchLogsRoutes(deps));
  app.route("/v1/models", modelsRoutes(deps));
  app.route("/v1/s3-events", s3EventsRoutes(deps));
  app.route("/v1/admin/keys", adminKeysRoutes(deps));
  app.route("/v1/admin/tenants", adminTenantsRoutes(deps));
  app.route("/", probeRoutes(deps));
  app.route("/v1/admin/usage", adminUsageRoutes(deps));
  app.route("/metrics", metricsRoutes(deps, metrics));
  app.route("/v1/throughput", throughputRoutes(deps));
  // The dashboard: a static page and its assets (no key), and the session check it signs in with.
  app.route("/", uiRoutes(deps));
  return app;
}

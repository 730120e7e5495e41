import { bucketReachable } from "@barge/core";
import { sql } from "kysely";
import { Hono } from "hono";
import { principalOf } from "../auth.js";
import type { ApiDeps, AppEnv } from "../deps.js";
import { BUCKET_PROBE_MS, healthReport, type HealthViewer } from "../health-report.js";

/**
 * The seeds' health page, and more: status with reasons, GPUs, workers, queue and limits. Open to
 * every caller (a load balancer has no key); with API keys configured, only a caller with one
 * sees the workers, which name batches: a tenant key its own batches only, the admin key all.
 * 503 only when unhealthy.
 */
export function healthRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  app.get("/", async (c) => {
    // With Postgres down no key can be checked: the caller is anonymous, and the report says why.
    const principal = await principalOf(deps, c.req.header("authorization")).catch(() => undefined);
    const viewer: HealthViewer = principal === undefined ? { kind: "anonymous" } : principal.kind === "admin" ? principal : { kind: "tenant", tenant: principal.tenant };
    const report = await healthReport(deps, new Date(), viewer);
    return c.json(report, report.status === "unhealthy" ? 503 : 200);
  });
  return app;
}

/** Kubernetes-style probes: `/livez` says the process is up (no I/O); `/readyz` that Postgres and the bucket answer. */
export function probeRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  app.get("/livez", (c) => c.json({ status: "ok" as const }));
  app.get("/readyz", async (c) => {
    const [database, bucket] = await Promise.all([
      sql`SELECT 1`.execute(deps.db).then(
        () => "ok" as const,
        (err: unknown) => {
          deps.log.warn({ err }, "readiness: database unreachable");
          return "unreachable" as const;
        },
      ),
      bucketReachable(deps, BUCKET_PROBE_MS).then((ok) => (ok ? ("ok" as const) : ("unreachable" as const))),
    ]);
    const ready = database === "ok" && bucket === "ok";
    const checks = { database, bucket };
    if (ready) return c.json({ status: "ready" as const, checks }, 200);
    const reason = [database !== "ok" ? "Postgres is unreachable" : "", bucket !== "ok" ? `the bucket '${deps.bucket}' does not answer` : ""].filter((r) => r !== "").join("; ");
    return c.json({ status: "unready" as const, checks, reason }, 503);
  });
  return app;
}

import { Hono } from "hono";
import type { ApiDeps, AppEnv } from "../deps.js";

/** Liveness that means something: the API answers only while it can reach Postgres. */
export function healthRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  app.get("/", async (c) => {
    try {
      await deps.db.selectNoFrom((eb) => eb.lit(1).as("one")).execute();
      return c.json({ status: "ok" as const });
    } catch (err) {
      deps.log.warn({ err }, "health check: database unreachable");
      return c.json({ status: "unavailable" as const, error: "database unreachable" }, 503);
    }
  });
  return app;
}

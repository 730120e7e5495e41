import { Hono } from "hono";
import type { AppEnv } from "./deps.js";
import { serviceUnavailable } from "./errors.js";

/**
 * What the API answers while it waits for Postgres or S3 at start: it is alive (`/livez`), not
 * ready (`/readyz` 503 with the reason), and every other request is a 503 service_unavailable
 * naming the same reason, so a client or load balancer learns what is wrong instead of meeting
 * a closed port.
 */
export function startingApp(reason: () => string) {
  const app = new Hono<AppEnv>();
  app.get("/livez", (c) => c.json({ status: "ok" as const }));
  app.get("/readyz", (c) => c.json({ status: "unready" as const, reason: `starting: ${reason()}` }, 503));
  app.all("*", (c) => serviceUnavailable(c, `Barge is starting and cannot serve yet: ${reason()}; retry shortly.`));
  return app;
}

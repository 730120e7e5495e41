import { Hono } from "hono";
import { z } from "zod";
import { tenantOf } from "../auth.js";
import type { ApiDeps, AppEnv } from "../deps.js";
import { throughputSeries } from "../store/throughput.js";
import { readQuery } from "../validation.js";

export const throughputQuery = z.object({
  minutes: z.coerce.number().int().min(1).max(1440).default(60),
});

export const throughputObject = z.object({
  object: z.literal("throughput"),
  interval_seconds: z.literal(60),
  data: z.array(z.object({ t: z.number().int(), requests_per_sec: z.number(), tokens_per_sec: z.number() })),
});

/** `GET /v1/throughput`: the caller's requests/s and tokens/s per minute (the dashboard's chart). */
export function throughputRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  app.get("/", async (c) => {
    const q = readQuery(c, throughputQuery);
    const data = await throughputSeries(deps.db, tenantOf(c), new Date(), q.minutes);
    return c.json({ object: "throughput" as const, interval_seconds: 60 as const, data } satisfies z.infer<typeof throughputObject>);
  });
  return app;
}

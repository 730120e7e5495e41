import { Hono } from "hono";
import type { ApiDeps, AppEnv } from "../deps.js";
import { liveModels } from "../store/agents.js";

/** An agent unseen for this long no longer counts as serving its models. */
const LIVE_MS = 60_000;

/** OpenAI's model list: the models some live agent can run right now. */
export function modelsRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  app.get("/", async (c) => {
    const models = await liveModels(deps.db, new Date(Date.now() - LIVE_MS));
    return c.json({
      object: "list" as const,
      data: models.map((m) => ({ id: m.id, object: "model" as const, created: Math.floor(m.created.getTime() / 1000), owned_by: "barge", shutdown_date: null })),
    });
  });
  return app;
}

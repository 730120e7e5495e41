import type { Db } from "../db/connect.js";

/**
 * Records an agent, the models its engine serves and that it is alive now (insert or refresh).
 * Why: operators and the metrics read who serves what from `agents`; an agent re-registers on
 * every heartbeat, so a restarted engine's new model list and a lapsed agent both show there.
 */
export async function registerAgent(db: Db, agent: { id: string; hostname: string; models: string[] }): Promise<void> {
  const row = { models: JSON.stringify(agent.models), hostname: agent.hostname, last_seen_at: new Date() };
  await db
    .insertInto("agents")
    .values({ id: agent.id, ...row })
    .onConflict((oc) => oc.column("id").doUpdateSet(row))
    .execute();
}

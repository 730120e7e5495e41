import type { Db } from "@barge/core";

/** A model some live agent serves, and since when (its earliest serving agent's start). */
export interface LiveModel {
  id: string;
  created: Date;
}

/** Models served by agents seen since `since`, sorted by name. */
export async function liveModels(db: Db, since: Date): Promise<LiveModel[]> {
  const agents = await db.selectFrom("agents").select(["models", "started_at"]).where("last_seen_at", ">=", since).execute();
  const byId = new Map<string, Date>();
  for (const a of agents) {
    for (const m of a.models) {
      const seen = byId.get(m);
      if (!seen || a.started_at < seen) byId.set(m, a.started_at);
    }
  }
  return [...byId].map(([id, created]) => ({ id, created })).sort((x, y) => x.id.localeCompare(y.id));
}

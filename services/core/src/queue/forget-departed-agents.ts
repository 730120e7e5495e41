import { sql } from "kysely";
import type { Db } from "../db/connect.js";

/**
 * Deletes agent rows not seen for `olderThanSeconds`. Why: an agent id is new on every start
 * (it carries the pid), so without this `agents` gains a row per restart forever, and every
 * reader of live agents (`/health`, `/v1/models`) scans it. Nothing references an agent row;
 * a chunk names its holder by id only, and a departed holder's lease has long lapsed.
 */
export async function forgetDepartedAgents(db: Db, olderThanSeconds: number): Promise<number> {
  const r = await sql`DELETE FROM agents WHERE last_seen_at < now() - make_interval(secs => ${olderThanSeconds})`.execute(db);
  return Number(r.numAffectedRows ?? 0n);
}

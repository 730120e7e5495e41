import { sql } from "kysely";
import type { Db } from "../db/connect.js";

/**
 * Whether any chunk of `models` is queued.
 * Why: an idle agent asks this on every poll before the claim. The claim is a large statement
 * that Postgres plans afresh each time, and with a fleet of idle agents that planning is most of
 * the database's load; this is one index probe on `chunks_fair` (model first) with a trivial plan.
 * It may say yes for a paused batch's chunks, and the claim then finds nothing: a superset of
 * what the claim can take, so it never hides work.
 */
export async function queuedWorkExists(db: Db, models: string[]): Promise<boolean> {
  if (models.length === 0) return false;
  const { rows } = await sql<{ found: boolean }>`
    SELECT EXISTS (SELECT 1 FROM chunks WHERE status = 'queued' AND model = ANY(${models}::text[])) AS found
  `.execute(db);
  return rows[0]?.found === true;
}

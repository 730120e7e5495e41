import { sql } from "kysely";
import type { Db } from "../db/connect.js";
import type { ChunkRow } from "../db/schema.js";

/**
 * Leases the next runnable chunk for an agent serving `models`.
 * Why one statement: SELECT ... FOR UPDATE SKIP LOCKED in a CTE lets any number of agents
 * claim concurrently without blocking or double-claiming. The ORDER BY (priority, then batch
 * age, then chunk order) is exactly the `chunks_claim` partial index. Bumping `fence` makes
 * every write of the previous holder (if any) fail its fenced WHERE. A paused batch keeps its
 * chunks `queued` (so a resume needs no second write) and is skipped here instead.
 */
export async function claimChunk(
  db: Db,
  args: { agentId: string; models: string[]; leaseSeconds: number },
): Promise<ChunkRow | undefined> {
  if (args.models.length === 0) return undefined;
  const { rows } = await sql<ChunkRow>`
    WITH next AS (
      SELECT batch_id, idx FROM chunks
      WHERE status = 'queued' AND model = ANY(${args.models}::text[])
        AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = chunks.batch_id AND b.paused_at IS NOT NULL)
      ORDER BY priority DESC, batch_created_at, batch_id, idx
      LIMIT 1
      FOR UPDATE SKIP LOCKED
    )
    UPDATE chunks c
    SET status = 'leased',
        leased_by = ${args.agentId},
        lease_expires_at = now() + make_interval(secs => ${args.leaseSeconds}),
        fence = c.fence + 1,
        attempts = c.attempts + 1,
        updated_at = now()
    FROM next
    WHERE c.batch_id = next.batch_id AND c.idx = next.idx
    RETURNING c.*
  `.execute(db);
  return rows[0];
}

import { sql } from "kysely";
import type { Db } from "../db/connect.js";
import type { BatchRow, BatchStatus } from "../db/schema.js";

export type BatchWork = Extract<BatchStatus, "validating" | "finalizing" | "cancelling">;

/**
 * Leases one batch that needs batch-level work: validating it, or stitching its results
 * (finalizing or cancelling) once no chunk is still held by a live lease: a batch that expired
 * or was cancelled mid-run waits for its runners to commit what finished. SKIP LOCKED plus a
 * lapsed-lease check means a crashed worker's batch is simply claimed again by anyone;
 * bumping `worker_fence` locks the old worker's final write out. Each claim also counts towards
 * its kind's attempts, in this same statement, so a worker that dies mid-work is counted too and
 * work that can never finish is given up after a bound instead of being claimed forever.
 */
export async function claimBatchWork(
  db: Db,
  args: { workerId: string; kinds: BatchWork[]; leaseSeconds: number; batchId?: string },
): Promise<BatchRow | undefined> {
  const { rows } = await sql<BatchRow>`
    WITH next AS (
      SELECT id FROM batches b
      WHERE status = ANY(${args.kinds}::text[])
        AND (worker_lease_expires_at IS NULL OR worker_lease_expires_at < now())
        AND (${args.batchId ?? null}::text IS NULL OR id = ${args.batchId ?? null})
        AND (status = 'validating' OR NOT EXISTS (
          SELECT 1 FROM chunks c
          WHERE c.batch_id = b.id AND c.status = 'leased' AND c.lease_expires_at > now()))
      ORDER BY created_at
      LIMIT 1
      FOR UPDATE SKIP LOCKED
    )
    UPDATE batches b
    SET worker_id = ${args.workerId},
        worker_lease_expires_at = now() + make_interval(secs => ${args.leaseSeconds}),
        worker_fence = b.worker_fence + 1,
        validation_attempts = b.validation_attempts + (b.status = 'validating')::int,
        finalize_attempts = b.finalize_attempts + (b.status <> 'validating')::int
    FROM next
    WHERE b.id = next.id
    RETURNING b.*
  `.execute(db);
  return rows[0];
}

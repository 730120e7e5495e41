import { sql } from "kysely";
import type { Db } from "../db/connect.js";
import { affectedOne } from "./affected.js";

/**
 * Hands back a leased chunk whose commit Postgres refused for its data (a permanent error),
 * recording why. A retry would fail the same way, so the next holder does not run its requests:
 * it fails what is left as `unstorable_result`, which commits (the error rows are made storable)
 * and lets the batch finish. The claim counts as a failed one, like any failed run. Fenced:
 * releasing a lost lease is a no-op.
 */
export async function releaseUnstorableChunk(db: Db, args: { batchId: string; idx: number; fence: number; error: string }): Promise<boolean> {
  const r = await sql`
    UPDATE chunks
    SET status = 'queued', leased_by = NULL, lease_expires_at = NULL, updated_at = now(),
        failures = failures + 1, unstorable_error = ${args.error}
    WHERE batch_id = ${args.batchId} AND idx = ${args.idx} AND fence = ${args.fence} AND status = 'leased'
  `.execute(db);
  return affectedOne(r);
}

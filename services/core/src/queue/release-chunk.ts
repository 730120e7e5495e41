import { sql } from "kysely";
import type { Db } from "../db/connect.js";

/**
 * Why a runner hands its chunk back: a graceful stop (`released`), a failed run (`failed`), the
 * engine gone (`engine_outage`, the timeline's own kind since the chunk waits for the engine), its
 * batch paused (`paused`), or its results refused by Postgres for their data (`unstorable`).
 */
export type ReleaseReason = "released" | "failed" | "engine_outage" | "paused" | "unstorable";

/**
 * Hands a leased chunk back to the queue at once (graceful shutdown, engine gone, failed run)
 * instead of letting another agent wait for the lease to lapse. The checkpoint stays, so the next
 * holder resumes after the last committed result. `failed` (a failed run, an engine outage)
 * counts the claim towards the poison-chunk cap; a graceful hand-back does not. `paused` (its
 * batch was paused) also takes back the claim's attempt: the run was the user's to stop, not a
 * try that went wrong. `unstorableError` records why Postgres refused the chunk's commit (a
 * permanent error): a retry would fail the same way, so the next holder does not run its
 * requests but fails what is left as `unstorable_result`, which commits (the error rows are made
 * storable) and lets the batch finish. Fenced: releasing a lost lease is a no-op. The timeline entry
 * (`chunk_retried`, or `engine_outage`) is written by the same statement, naming the holder the
 * release took the chunk from.
 */
export async function releaseChunk(
  db: Db,
  args: { batchId: string; idx: number; fence: number; failed?: boolean; paused?: boolean; reason?: ReleaseReason; unstorableError?: string },
): Promise<boolean> {
  const unstorable = args.unstorableError !== undefined;
  const reason = args.reason ?? (unstorable ? "unstorable" : args.paused === true ? "paused" : args.failed === true ? "failed" : "released");
  const kind = reason === "engine_outage" ? "engine_outage" : "chunk_retried";
  const data = reason === "engine_outage" ? sql`'{}'::jsonb` : sql`jsonb_build_object('reason', ${reason}::text)`;
  const { rows } = await sql<{ idx: number }>`
    WITH held AS (
      SELECT batch_id, idx, leased_by FROM chunks
      WHERE batch_id = ${args.batchId} AND idx = ${args.idx} AND fence = ${args.fence} AND status = 'leased'
      FOR UPDATE
    ), released AS (
      UPDATE chunks c
      SET status = 'queued', leased_by = NULL, lease_expires_at = NULL, updated_at = now(),
          failures = c.failures + ${args.failed === true || unstorable ? 1 : 0},
          attempts = c.attempts - ${args.paused === true ? 1 : 0},
          unstorable_error = COALESCE(${args.unstorableError ?? null}::text, c.unstorable_error)
      FROM held
      WHERE c.batch_id = held.batch_id AND c.idx = held.idx
      RETURNING c.batch_id, c.idx, held.leased_by
    ), events AS (
      INSERT INTO batch_events (batch_id, kind, data)
      SELECT batch_id, ${kind}, jsonb_build_object('chunk', idx, 'agent', leased_by) || ${data} FROM released
    )
    SELECT idx FROM released
  `.execute(db);
  return rows.length === 1;
}

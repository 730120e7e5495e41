import { sql } from "kysely";
import { ACTIVE_BATCH_STATUSES, cancelBatch, progressFromSums, recordBatchEvent, PROGRESS_SUMS, RateLimited, type BatchProgress, type BatchRow, type BatchStatus, type Db, type ProgressSums } from "@barge/core";

/** The columns a new batch row needs. */
export interface NewBatchRow {
  id: string;
  tenant: string;
  endpoint: string;
  model: string | null;
  /** `model` replaces each line's body `model` at run time (the one-shot form's model). */
  model_override: boolean;
  input_file_id: string;
  completion_window: string;
  metadata: Record<string, string> | null;
  priority: number;
  created_at: Date;
  expires_at: Date;
  output_expires_after_seconds: number | null;
  webhook_url: string | null;
  /** The failure threshold (see failure-threshold-params.ts); null: none. */
  max_failure_rate?: number | null;
  min_requests?: number | null;
  /** The batch whose failed requests this one re-runs. */
  retry_of: string | null;
  /** A serverless batch's results prefix (`results/<path>/`); unset: the usual outputs key. */
  results_prefix?: string | null;
}

/**
 * Inserts a batch in `validating` with its timeline's `created` entry and returns it. `db` is the
 * creating transaction, so the entry exists exactly when the row does.
 */
export async function insertBatch(db: Db, b: NewBatchRow): Promise<BatchRow> {
  // The repo's convention for the json columns: JSON null, not SQL NULL (both read back as null).
  const row = await db
    .insertInto("batches")
    .values({
      ...b,
      status: "validating",
      metadata: JSON.stringify(b.metadata),
      errors: JSON.stringify(null),
      stitch_state: JSON.stringify(null),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  await recordBatchEvent(db, row.id, "created", { model: row.model, input_file_id: row.input_file_id, retry_of: row.retry_of });
  return row;
}

/** A batch of the tenant. */
export function findBatch(db: Db, tenant: string, id: string): Promise<BatchRow | undefined> {
  return db.selectFrom("batches").selectAll().where("id", "=", id).where("tenant", "=", tenant).executeTakeFirst();
}

/** A batch row with everything its Batch object shows: committed progress and the model's recorded speed. */
export interface BatchView {
  row: BatchRow;
  progress: BatchProgress;
  /** requests/s recorded for the batch's model, or undefined when none is. */
  requestsPerSec: number | undefined;
}

/**
 * A batch of the tenant with its progress and its model's recorded throughput, in one statement:
 * this is the status poll every client repeats, so it costs one round trip, not three.
 */
export async function findBatchView(db: Db, tenant: string, id: string): Promise<BatchView | undefined> {
  const { rows } = await sql<BatchRow & { progress: ProgressSums; t_requests_per_sec: number | null }>`
    SELECT b.*, to_jsonb(p) AS progress, t.requests_per_sec AS t_requests_per_sec
    FROM batches b
    CROSS JOIN LATERAL (SELECT ${PROGRESS_SUMS} FROM chunks c WHERE c.batch_id = b.id) p
    LEFT JOIN model_throughput t ON t.model = b.model
    WHERE b.id = ${id} AND b.tenant = ${tenant}
  `.execute(db);
  const r = rows[0];
  if (!r) return undefined;
  const { progress, t_requests_per_sec, ...row } = r;
  return { row, progress: progressFromSums(progress), requestsPerSec: t_requests_per_sec ?? undefined };
}

/**
 * One page of the tenant's batches, newest first (ids are time-ordered), after a cursor, in any
 * of `status` when given. Why no index of its own: the walk is a backward range on an id index
 * (the primary key or (tenant, id)) that stops after `limit` matches, the statuses a filter on it.
 */
export async function listBatches(
  db: Db,
  tenant: string,
  q: { after?: string | undefined; limit: number; status?: BatchStatus[] | undefined },
): Promise<{ rows: BatchRow[]; hasMore: boolean }> {
  let query = db.selectFrom("batches").selectAll().where("tenant", "=", tenant);
  if (q.after) query = query.where("id", "<", q.after);
  if (q.status) query = query.where("status", "in", q.status);
  const rows = await query.orderBy("id", "desc").limit(q.limit + 1).execute();
  return { rows: rows.slice(0, q.limit), hasMore: rows.length > q.limit };
}

/**
 * Starts cancelling a batch (core's statement) and, when it moved, writes the timeline's
 * `cancel_requested` in the same transaction; undefined if it was no longer cancellable.
 */
export function cancelBatchRow(db: Db, id: string): Promise<BatchRow | undefined> {
  return db.transaction().execute(async (tx) => {
    const moved = await cancelBatch(tx, id);
    if (moved) await recordBatchEvent(tx, id, "cancel_requested", { status: moved.status });
    return moved;
  });
}

/** What a client over a global limit is told to wait; the queue drains at the fleet's pace, not a known one. */
const RETRY_AFTER_SECONDS = 60;

/**
 * Refuses a new batch (429) while the deployment is at MAX_ACTIVE_BATCHES or has at least
 * MAX_QUEUED_REQUESTS requests enqueued and not yet run. Inside the creating transaction it first
 * takes a transaction-scoped advisory lock, so concurrent creates count one another and cannot
 * all slip under the limit together. A batch still validating has no request count yet, so it
 * counts as a batch but adds no queued requests.
 */
export async function admitBatch(db: Db, limits: { maxActive: number; maxQueued: number }): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.batch_admission'))`.execute(db);
  const active = await db
    .selectFrom("batches")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("status", "in", ACTIVE_BATCH_STATUSES)
    .executeTakeFirstOrThrow();
  if (active.n >= limits.maxActive) {
    throw new RateLimited(
      `There are ${active.n} active batches, the most this deployment runs at once; retry once some have finished.`,
      RETRY_AFTER_SECONDS,
      "batch_limit_exceeded",
    );
  }
  const queued = await db
    .selectFrom("chunks")
    .select(sql<number>`coalesce(sum(request_count - committed), 0)::int8`.as("n"))
    .where("status", "in", ["queued", "leased"])
    .executeTakeFirstOrThrow();
  if (queued.n >= limits.maxQueued) {
    throw new RateLimited(
      `${queued.n} requests are queued, the most this deployment holds at once; retry once some have run.`,
      RETRY_AFTER_SECONDS,
      "queued_requests_limit_exceeded",
    );
  }
}

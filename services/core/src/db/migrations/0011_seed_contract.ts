import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one instead.

/**
 * What the seeds' contract and the batch controls need in one place:
 * - `batch_events`, a batch's timeline (`GET /v1/batches/{id}/logs`), written in the same
 *   transactions as the changes it describes. Why keyed by (batch_id, seq): the log is read per
 *   batch in order, and paging by seq is an index range. Cascade: a batch's events go with it.
 * - `batches.model_override`: the batch's model came from the multipart form and replaces each
 *   line's body `model` at run time (the seeds' clients send placeholder models).
 * - `batches.paused_at` (pause/resume), `max_failure_rate` + `min_requests` (the failure
 *   threshold) and `cancel_reason` (why a batch was cancelled when the user did not ask).
 * - `agents` heartbeat state for `/health` and GPU protection: per-GPU readings, the engine's
 *   KV-cache usage, why claims are paused (null: claiming), in-flight requests and the limit.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE batch_events (
      batch_id text NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
      seq bigint GENERATED ALWAYS AS IDENTITY,
      kind text NOT NULL,
      data jsonb NOT NULL DEFAULT '{}'::jsonb,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (batch_id, seq)
    );
    ALTER TABLE batches
      ADD COLUMN model_override boolean NOT NULL DEFAULT false,
      ADD COLUMN paused_at timestamptz,
      ADD COLUMN max_failure_rate double precision CHECK (max_failure_rate >= 0 AND max_failure_rate <= 1),
      ADD COLUMN min_requests integer CHECK (min_requests >= 0),
      ADD COLUMN cancel_reason text;
    ALTER TABLE agents
      ADD COLUMN gpus jsonb,
      ADD COLUMN kv_cache_usage double precision,
      ADD COLUMN claims_paused_reason text,
      ADD COLUMN in_flight integer,
      ADD COLUMN concurrency_limit integer;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE agents DROP COLUMN gpus, DROP COLUMN kv_cache_usage, DROP COLUMN claims_paused_reason,
      DROP COLUMN in_flight, DROP COLUMN concurrency_limit;
    ALTER TABLE batches DROP COLUMN model_override, DROP COLUMN paused_at, DROP COLUMN max_failure_rate,
      DROP COLUMN min_requests, DROP COLUMN cancel_reason;
    DROP TABLE batch_events;
  `.execute(db);
}

import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one instead.

/**
 * Failed requests become queryable rows, written in the transaction that commits the segment
 * holding their error lines (so they are fenced with it and exist exactly once). Chunks learn who
 * completed them and how many claims crashed (the poison-chunk cap); a batch can name the batch
 * whose failures it re-runs. The partial index serves the expiry sweep every agent runs.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE request_errors (
      batch_id text NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
      request_index integer NOT NULL,
      chunk_idx integer NOT NULL,
      custom_id text NOT NULL,
      line integer NOT NULL,
      code text NOT NULL,
      message text NOT NULL,
      status_code integer,
      attempts integer NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (batch_id, request_index)
    );
    -- The errors listing pages by custom_id (its cursor), in input order.
    CREATE UNIQUE INDEX request_errors_custom_id ON request_errors (batch_id, custom_id);

    ALTER TABLE chunks ADD COLUMN done_by text, ADD COLUMN failures integer NOT NULL DEFAULT 0;
    ALTER TABLE batches ADD COLUMN retry_of text;
    CREATE INDEX batches_expiry ON batches (expires_at) WHERE status = 'in_progress';
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP INDEX batches_expiry;
    ALTER TABLE batches DROP COLUMN retry_of;
    ALTER TABLE chunks DROP COLUMN done_by, DROP COLUMN failures;
    DROP TABLE request_errors;
  `.execute(db);
}

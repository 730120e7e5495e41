import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one instead.

/**
 * Serverless mode. `s3_objects` records each object version that landed under the trigger
 * prefix, once: the unique (bucket, key, etag) index is what makes any number of events and
 * pollers start one batch, as an insert that conflicts does nothing. `outcome` is null until the
 * acceptor settles the row ('batch', 'failed', or 'overwritten' when the key held other bytes by
 * then); `status_seq` is the last timeline entry written to the object's status.json, and
 * `status_final` ends its rewrites. `batches.results_prefix` is where such a batch's results go
 * (`results/<path>/`) in place of `outputs/<tenant>/<batch>/`; null for every other batch.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE s3_objects (
      bucket text NOT NULL,
      key text NOT NULL,
      etag text NOT NULL,
      version_id text,
      size bigint NOT NULL,
      first_seen_at timestamptz NOT NULL DEFAULT now(),
      batch_id text REFERENCES batches(id) ON DELETE SET NULL,
      outcome text CHECK (outcome IN ('batch', 'failed', 'overwritten')),
      error text,
      attempts int NOT NULL DEFAULT 0,
      claimed_until timestamptz,
      status_seq bigint NOT NULL DEFAULT 0,
      status_final boolean NOT NULL DEFAULT false
    );
    CREATE UNIQUE INDEX s3_objects_version ON s3_objects (bucket, key, etag);
    CREATE INDEX s3_objects_unsettled ON s3_objects (first_seen_at) WHERE outcome IS NULL;
    CREATE INDEX s3_objects_status_open ON s3_objects (batch_id) WHERE batch_id IS NOT NULL AND NOT status_final;
    ALTER TABLE batches ADD COLUMN results_prefix text;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE batches DROP COLUMN results_prefix;
    DROP TABLE s3_objects;
  `.execute(db);
}

import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one instead.

/**
 * OpenAI parity: output expiry and per-batch webhooks on batches, OpenAI's Uploads API, the
 * webhook outbox, and per-model throughput for completion estimates.
 *
 * Why a trigger for what happens when a batch reaches a final state: the final transitions are
 * written in four places (the agent's finalizer, the API's validator, cancel-while-validating and
 * the expiry path), by different processes. One AFTER UPDATE OF status trigger catches each of
 * them, present and future, inside the very transaction that commits the state: the outbox row
 * can neither be lost (the transition committed, the event did not) nor precede a transition
 * that rolled back. Its three steps only touch tables this migration owns, plus the expiry of
 * the batch's own output files, which the finalizer inserted earlier in the same transaction.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE batches
      ADD COLUMN output_expires_after_seconds integer,
      ADD COLUMN webhook_url text;

    CREATE INDEX files_expiring ON files (expires_at) WHERE expires_at IS NOT NULL;

    CREATE TABLE uploads (
      id text PRIMARY KEY,
      tenant text NOT NULL,
      filename text NOT NULL,
      purpose text NOT NULL,
      mime_type text NOT NULL,
      bytes bigint NOT NULL,
      status text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      file_expires_after_seconds integer,
      -- Arrival counter: each part takes the next number in one UPDATE, so parallel parts never collide.
      parts_started integer NOT NULL DEFAULT 0,
      file_id text
    );
    CREATE INDEX uploads_pending ON uploads (expires_at) WHERE status = 'pending';

    CREATE TABLE upload_parts (
      id text PRIMARY KEY,
      upload_id text NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
      part_number integer NOT NULL,
      bytes bigint NOT NULL,
      s3_key text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (upload_id, part_number)
    );

    CREATE TABLE model_throughput (
      model text PRIMARY KEY,
      requests_per_sec double precision NOT NULL,
      tokens_per_sec double precision NOT NULL,
      batches integer NOT NULL,
      updated_at timestamptz NOT NULL
    );

    CREATE TABLE webhook_events (
      id text PRIMARY KEY,
      type text NOT NULL,
      batch_id text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      -- Set once the event has one delivery row per endpoint.
      fanned_out boolean NOT NULL DEFAULT false
    );
    CREATE INDEX webhook_events_fan_out ON webhook_events (created_at) WHERE NOT fanned_out;

    CREATE TABLE webhook_deliveries (
      event_id text NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
      url text NOT NULL,
      attempts integer NOT NULL DEFAULT 0,
      next_attempt_at timestamptz NOT NULL DEFAULT now(),
      delivered_at timestamptz,
      failed_at timestamptz,
      last_error text,
      PRIMARY KEY (event_id, url)
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
      WHERE delivered_at IS NULL AND failed_at IS NULL;

    CREATE FUNCTION batch_reached_final_state() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
    DECLARE
      requests bigint;
      tokens bigint;
      seconds double precision;
    BEGIN
      INSERT INTO webhook_events (id, type, batch_id)
      VALUES ('evt_' || replace(gen_random_uuid()::text, '-', ''), 'batch.' || NEW.status, NEW.id);

      IF NEW.output_expires_after_seconds IS NOT NULL THEN
        UPDATE files SET expires_at = NEW.created_at + make_interval(secs => NEW.output_expires_after_seconds)
        WHERE id IN (NEW.output_file_id, NEW.error_file_id);
      END IF;

      -- The inference window ends when the last chunk is done (finalizing_at), not after the stitch.
      IF NEW.status = 'completed' AND NEW.model IS NOT NULL AND NEW.in_progress_at IS NOT NULL AND NEW.finalizing_at IS NOT NULL THEN
        SELECT sum(completed + failed), sum(prompt_tokens + completion_tokens) INTO requests, tokens
        FROM chunks WHERE batch_id = NEW.id;
        seconds := extract(epoch FROM NEW.finalizing_at - NEW.in_progress_at);
        IF requests > 0 AND seconds > 0 THEN
          -- An even moving average: recent batches count most, one odd batch cannot swing it alone.
          INSERT INTO model_throughput AS t (model, requests_per_sec, tokens_per_sec, batches, updated_at)
          VALUES (NEW.model, requests / seconds, tokens / seconds, 1, now())
          ON CONFLICT (model) DO UPDATE SET
            requests_per_sec = (t.requests_per_sec + EXCLUDED.requests_per_sec) / 2,
            tokens_per_sec = (t.tokens_per_sec + EXCLUDED.tokens_per_sec) / 2,
            batches = t.batches + 1,
            updated_at = now();
        END IF;
      END IF;
      RETURN NULL;
    END
    $fn$;

    CREATE TRIGGER batches_final_state
      AFTER UPDATE OF status ON batches
      FOR EACH ROW
      WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('completed', 'failed', 'cancelled', 'expired'))
      EXECUTE FUNCTION batch_reached_final_state();
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP TRIGGER batches_final_state ON batches;
    DROP FUNCTION batch_reached_final_state();
    DROP TABLE webhook_deliveries, webhook_events, model_throughput, upload_parts, uploads;
    DROP INDEX files_expiring;
    ALTER TABLE batches DROP COLUMN output_expires_after_seconds, DROP COLUMN webhook_url;
  `.execute(db);
}

import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one instead.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE files (
      id text PRIMARY KEY,
      tenant text NOT NULL,
      purpose text NOT NULL,
      filename text NOT NULL,
      bytes bigint NOT NULL DEFAULT 0,
      status text NOT NULL,
      s3_key text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      upload_expires_at timestamptz,
      expires_at timestamptz
    );
    CREATE INDEX files_tenant_id ON files (tenant, id DESC);
    CREATE INDEX files_pending ON files (upload_expires_at) WHERE status = 'pending';

    CREATE TABLE batches (
      id text PRIMARY KEY,
      tenant text NOT NULL,
      status text NOT NULL,
      endpoint text NOT NULL,
      model text,
      input_file_id text NOT NULL REFERENCES files (id),
      completion_window text NOT NULL,
      metadata jsonb,
      priority integer NOT NULL DEFAULT 0,
      errors jsonb,
      total_requests integer NOT NULL DEFAULT 0,
      output_file_id text,
      error_file_id text,
      output_key text,
      error_key text,
      created_at timestamptz NOT NULL DEFAULT now(),
      in_progress_at timestamptz,
      expires_at timestamptz NOT NULL,
      finalizing_at timestamptz,
      completed_at timestamptz,
      failed_at timestamptz,
      expired_at timestamptz,
      cancelling_at timestamptz,
      cancelled_at timestamptz,
      worker_id text,
      worker_lease_expires_at timestamptz,
      worker_fence integer NOT NULL DEFAULT 0,
      stitch_state jsonb
    );
    CREATE INDEX batches_tenant_id ON batches (tenant, id DESC);
    CREATE INDEX batches_needing_worker ON batches (created_at)
      WHERE status IN ('validating', 'finalizing', 'cancelling');

    CREATE TABLE chunks (
      batch_id text NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
      idx integer NOT NULL,
      model text NOT NULL,
      priority integer NOT NULL,
      batch_created_at timestamptz NOT NULL,
      request_start integer NOT NULL,
      request_count integer NOT NULL,
      start_line integer NOT NULL,
      start_offset bigint NOT NULL,
      end_offset bigint NOT NULL,
      status text NOT NULL DEFAULT 'queued',
      leased_by text,
      lease_expires_at timestamptz,
      fence integer NOT NULL DEFAULT 0,
      attempts integer NOT NULL DEFAULT 0,
      committed integer NOT NULL DEFAULT 0,
      next_offset bigint NOT NULL,
      next_line integer NOT NULL,
      next_seq integer NOT NULL DEFAULT 0,
      completed integer NOT NULL DEFAULT 0,
      failed integer NOT NULL DEFAULT 0,
      prompt_tokens bigint NOT NULL DEFAULT 0,
      completion_tokens bigint NOT NULL DEFAULT 0,
      cached_tokens bigint NOT NULL DEFAULT 0,
      reasoning_tokens bigint NOT NULL DEFAULT 0,
      updated_at timestamptz NOT NULL DEFAULT now(),
      done_at timestamptz,
      PRIMARY KEY (batch_id, idx)
    );
    -- Serves the claim: only queued chunks, in the claim's exact ORDER BY.
    CREATE INDEX chunks_claim ON chunks (model, priority DESC, batch_created_at, batch_id, idx)
      WHERE status = 'queued';
    -- Serves the rescuer's scan for lapsed leases.
    CREATE INDEX chunks_leased ON chunks (lease_expires_at) WHERE status = 'leased';

    CREATE TABLE segments (
      batch_id text NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
      chunk_idx integer NOT NULL,
      seq integer NOT NULL,
      kind text NOT NULL,
      s3_key text NOT NULL,
      bytes bigint NOT NULL,
      lines integer NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (batch_id, kind, chunk_idx, seq)
    );

    CREATE TABLE agents (
      id text PRIMARY KEY,
      models jsonb NOT NULL,
      hostname text NOT NULL,
      started_at timestamptz NOT NULL DEFAULT now(),
      last_seen_at timestamptz NOT NULL
    );
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE agents, segments, chunks, batches, files`.execute(db);
}

import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one instead.

/**
 * Parts of a batch's output upload that cover a run of consecutive chunks, not one chunk each:
 * with short results every chunk's output is below S3's 5 MiB part minimum, so one part per chunk
 * could never be completed and the whole output was stitched at the end.
 *
 * A row is claimed (range, part number `first_chunk + 1`, bytes) by the agent that decided the run
 * while holding the batch row, so no two agents cover a chunk twice; `upload_id`, `etag` and
 * `source_digest` are filled in once the part is uploaded. The finalizer trusts a part only while
 * its upload id and the digest of its chunks' segments still match. `chunk_parts` (one chunk per
 * part) is carried over as one-chunk runs and dropped.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE output_parts (
      batch_id text NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
      first_chunk integer NOT NULL,
      last_chunk integer NOT NULL,
      part_number integer NOT NULL,
      bytes bigint NOT NULL,
      upload_id text,
      etag text,
      source_digest text,
      created_at timestamptz NOT NULL DEFAULT now(),
      uploaded_at timestamptz,
      PRIMARY KEY (batch_id, first_chunk),
      CHECK (last_chunk >= first_chunk)
    );

    INSERT INTO output_parts (batch_id, first_chunk, last_chunk, part_number, bytes, upload_id, etag, source_digest, created_at, uploaded_at)
    SELECT batch_id, chunk_idx, chunk_idx, part_number, bytes, upload_id, etag, source_digest, created_at, created_at FROM chunk_parts;

    DROP TABLE chunk_parts;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE chunk_parts (
      batch_id text NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
      chunk_idx integer NOT NULL,
      upload_id text NOT NULL,
      part_number integer NOT NULL,
      etag text NOT NULL,
      bytes bigint NOT NULL,
      source_digest text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (batch_id, chunk_idx)
    );

    INSERT INTO chunk_parts (batch_id, chunk_idx, upload_id, part_number, etag, bytes, source_digest, created_at)
    SELECT batch_id, first_chunk, upload_id, part_number, etag, bytes, source_digest, created_at FROM output_parts
    WHERE first_chunk = last_chunk AND etag IS NOT NULL;

    DROP TABLE output_parts;
  `.execute(db);
}

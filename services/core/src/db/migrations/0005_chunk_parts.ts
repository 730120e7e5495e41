import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one instead.

/**
 * Chunk outputs uploaded as parts while a batch runs, so finalizing only completes one multipart
 * upload instead of moving the output's bytes.
 *
 * `batches.output_upload_id` is the batch's one multipart upload for its output object; the first
 * agent to set it wins and every other uses it. `chunk_parts` records, per chunk, the part it
 * uploaded there and a digest of the segments it was built from: the finalizer trusts a part only
 * while the upload id and the digest still match, so anything that changed a chunk's output
 * since merely sends that chunk down the rebuild (or the old stitch) path.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE batches ADD COLUMN output_upload_id text;

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
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP TABLE chunk_parts;
    ALTER TABLE batches DROP COLUMN output_upload_id;
  `.execute(db);
}

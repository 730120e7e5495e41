import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one instead.

/**
 * Pins inputs to the bytes that were validated. `files.etag` is the ETag of the object a file row
 * names, as the write that made it reported; `batches.input_etag` is the ETag the batch's input
 * had when it was validated, which every later read of that input sends as If-Match. Why nullable:
 * rows written before this migration have neither, and they keep being read unpinned.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE files ADD COLUMN etag text;
    ALTER TABLE batches ADD COLUMN input_etag text;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE batches DROP COLUMN input_etag;
    ALTER TABLE files DROP COLUMN etag;
  `.execute(db);
}

import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one instead.

/**
 * What the upload check of a presigned file validated (the object's ETag and size, and the
 * request count, model, endpoint and chunk index it found), so the batch validator can start a
 * batch on that same object without reading it a second time.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE files ADD COLUMN input_check jsonb`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE files DROP COLUMN input_check`.execute(db);
}

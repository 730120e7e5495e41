import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one instead.

/**
 * A batch keeps naming its input file after the file is deleted, as OpenAI's does; the foreign
 * key made deleting the input of a finished batch fail. The API refuses to delete the input of
 * a batch that is still running instead.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE batches DROP CONSTRAINT IF EXISTS batches_input_file_id_fkey`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE batches ADD CONSTRAINT batches_input_file_id_fkey FOREIGN KEY (input_file_id) REFERENCES files (id) NOT VALID`.execute(db);
}

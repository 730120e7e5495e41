import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one instead.

/**
 * Counters that bound work which fails the same way every time, so it ends instead of being
 * claimed again forever: `validation_attempts` and `finalize_attempts` count the claims of a
 * batch for each kind of batch work (the claim statement bumps them); `unstorable_error` marks a
 * chunk whose results Postgres refused for their data (a permanent error), so its next run fails
 * its remaining requests as `unstorable_result` instead of sending them to the engine again.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE batches
      ADD COLUMN validation_attempts integer NOT NULL DEFAULT 0,
      ADD COLUMN finalize_attempts integer NOT NULL DEFAULT 0;
    ALTER TABLE chunks ADD COLUMN unstorable_error text;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE chunks DROP COLUMN unstorable_error;
    ALTER TABLE batches DROP COLUMN validation_attempts, DROP COLUMN finalize_attempts;
  `.execute(db);
}

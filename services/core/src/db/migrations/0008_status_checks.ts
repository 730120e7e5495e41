import { sql, type Kysely } from "kysely";
import { BATCH_STATUSES, CHUNK_STATUSES } from "../../domain/batch-state.js";

// Frozen: never edit a migration that has shipped; add a new one instead.

/**
 * CHECK constraints on `batches.status` and `chunks.status`, so a statement that writes a status
 * the state module does not know fails in Postgres instead of leaving a batch no code moves on.
 *
 * Why built from `BATCH_STATUSES` / `CHUNK_STATUSES` rather than spelled out: the lists have one
 * home, and the constraints mirror it. A migration runs once, though: a later change to either
 * list needs a new migration that drops these constraints and adds them again.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE batches ADD CONSTRAINT batches_status_check CHECK (status IN (${literals(BATCH_STATUSES)}));
    ALTER TABLE chunks ADD CONSTRAINT chunks_status_check CHECK (status IN (${literals(CHUNK_STATUSES)}));
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE chunks DROP CONSTRAINT chunks_status_check;
    ALTER TABLE batches DROP CONSTRAINT batches_status_check;
  `.execute(db);
}

/** DDL takes no bind parameters, so the statuses go in as quoted literals. */
function literals(statuses: readonly string[]) {
  return sql.join(statuses.map((s) => sql.lit(s)));
}

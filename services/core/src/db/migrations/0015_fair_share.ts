import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one instead.

/**
 * Fair share of the GPUs. `chunks_fair` serves the claim: its (model, tenant) prefix lists the
 * tenants waiting on a model with one index probe each, and the rest is the order within a
 * tenant (earliest deadline, then priority, then batch age and chunk order), so each tenant's
 * next chunks are read in order and never sorted. `tenant_shares.last_start` is the virtual time
 * at which the tenant's last claim started: the largest of them is the model's clock, where a
 * tenant arriving or coming back starts, so it neither waits behind the others' history nor
 * replays its own idle time. `last_claimed_at` breaks ties: the tenant served longest ago first.
 * `chunks.tenant` and `chunks.expires_at` (0014) are already filled by enqueue and backfilled.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE INDEX chunks_fair ON chunks (model, tenant, expires_at, priority DESC, batch_created_at, batch_id, idx)
      WHERE status = 'queued';
    ALTER TABLE tenant_shares
      ADD COLUMN last_start double precision NOT NULL DEFAULT 0,
      ADD COLUMN last_claimed_at timestamptz;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE tenant_shares DROP COLUMN last_start, DROP COLUMN last_claimed_at;
    DROP INDEX chunks_fair;
  `.execute(db);
}

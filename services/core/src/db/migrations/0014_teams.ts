import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one instead.

/**
 * Teams. `api_keys` holds each tenant key as a SHA-256 hash only (the secret is shown once);
 * every request looks its key up, so a revoke (`revoked_at`) holds at once on every replica.
 * `tenants` holds what the admin set for a tenant: its share `weight` and `limits`, a JSON
 * object whose absent keys fall back to the TENANT_* defaults and whose null values mean
 * unlimited. `rate_limits` is the GCRA state per tenant and limit: the theoretical arrival time
 * one statement advances, so the limits hold across replicas and racing requests.
 * `tenant_shares` is the fair-share claim's virtual time per tenant and model (stride
 * scheduling): a claim adds the chunk's requests over the tenant's weight, and the tenant that
 * is furthest behind claims next. `tenant_usage` sums committed usage per UTC day, tenant, model
 * and batch, written with each segment's commit; it has no foreign key, so usage outlives the
 * batches it counts. `chunks.tenant` and `chunks.expires_at` are the batch's, denormalized for
 * the claim's ordering.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE api_keys (
      id text PRIMARY KEY,
      tenant text NOT NULL CHECK (tenant <> ''),
      name text NOT NULL,
      key_hash text NOT NULL UNIQUE,
      redacted text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      revoked_at timestamptz
    );
    CREATE INDEX api_keys_tenant ON api_keys (tenant, created_at);

    CREATE TABLE tenants (
      tenant text PRIMARY KEY CHECK (tenant <> ''),
      weight double precision NOT NULL DEFAULT 1 CHECK (weight > 0),
      limits jsonb NOT NULL DEFAULT '{}'::jsonb,
      updated_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE rate_limits (
      tenant text NOT NULL,
      name text NOT NULL,
      tat timestamptz NOT NULL,
      PRIMARY KEY (tenant, name)
    );

    CREATE TABLE tenant_shares (
      tenant text NOT NULL,
      model text NOT NULL,
      pass double precision NOT NULL DEFAULT 0,
      PRIMARY KEY (tenant, model)
    );

    CREATE TABLE tenant_usage (
      day date NOT NULL,
      tenant text NOT NULL,
      model text NOT NULL,
      batch_id text NOT NULL,
      requests bigint NOT NULL DEFAULT 0,
      failed bigint NOT NULL DEFAULT 0,
      prompt_tokens bigint NOT NULL DEFAULT 0,
      completion_tokens bigint NOT NULL DEFAULT 0,
      cached_tokens bigint NOT NULL DEFAULT 0,
      reasoning_tokens bigint NOT NULL DEFAULT 0,
      PRIMARY KEY (day, tenant, model, batch_id)
    );
    CREATE INDEX tenant_usage_tenant ON tenant_usage (tenant, day);

    ALTER TABLE chunks ADD COLUMN tenant text, ADD COLUMN expires_at timestamptz;
    UPDATE chunks c SET tenant = b.tenant, expires_at = b.expires_at FROM batches b WHERE b.id = c.batch_id;
    ALTER TABLE chunks ALTER COLUMN tenant SET NOT NULL, ALTER COLUMN expires_at SET NOT NULL;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE chunks DROP COLUMN tenant, DROP COLUMN expires_at;
    DROP TABLE tenant_usage;
    DROP TABLE tenant_shares;
    DROP TABLE rate_limits;
    DROP TABLE tenants;
    DROP TABLE api_keys;
  `.execute(db);
}

import { Kysely, PostgresDialect, sql } from "kysely";
import { Migrator, type Migration, type MigrationProvider } from "kysely/migration";
import pg from "pg";
import * as m0001 from "./migrations/0001_init.js";
import * as m0002 from "./migrations/0002_input_file_fk.js";
import * as m0003 from "./migrations/0003_request_errors.js";
import * as m0004 from "./migrations/0004_openai_parity.js";
import * as m0005 from "./migrations/0005_chunk_parts.js";
import * as m0006 from "./migrations/0006_file_input_check.js";
import * as m0007 from "./migrations/0007_output_parts.js";
import * as m0008 from "./migrations/0008_status_checks.js";
import * as m0009 from "./migrations/0009_bounded_attempts.js";
import * as m0010 from "./migrations/0010_input_etag.js";
import * as m0011 from "./migrations/0011_seed_contract.js";
import * as m0012 from "./migrations/0012_batch_event_trigger.js";
import * as m0013 from "./migrations/0013_s3_trigger.js";
import * as m0014 from "./migrations/0014_teams.js";
import * as m0015 from "./migrations/0015_fair_share.js";
import type { Database } from "./schema.js";

// bigint columns hold byte offsets and token sums, all far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export type Db = Kysely<Database>;

const migrations: Record<string, Migration> = {
  "0001_init": m0001,
  "0002_input_file_fk": m0002,
  "0003_request_errors": m0003,
  "0004_openai_parity": m0004,
  "0005_chunk_parts": m0005,
  "0006_file_input_check": m0006,
  "0007_output_parts": m0007,
  "0008_status_checks": m0008,
  "0009_bounded_attempts": m0009,
  "0010_input_etag": m0010,
  "0011_seed_contract": m0011,
  "0012_batch_event_trigger": m0012,
  "0013_s3_trigger": m0013,
  "0014_teams": m0014,
  "0015_fair_share": m0015,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

export interface DbOptions {
  url: string;
  /** A Postgres schema to live in (tests give each suite its own); default `public`. */
  schema?: string;
  maxConnections?: number;
}

/** Opens a pooled Kysely handle, pinned to one schema through search_path. */
export function createDb(opts: DbOptions): Db {
  const schema = opts.schema ?? "public";
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`bad schema name: ${schema}`);
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.maxConnections ?? 10,
    options: `-c search_path=${schema}`,
  });
  // A pooled client that loses its server (restart, failover) emits here; the pool drops it.
  pool.on("error", () => {});
  // A checked-out client has no pool listener, so a server going away between two statements of
  // a transaction would emit an unhandled 'error' and kill the process; the statement in flight
  // (or the next one) fails instead, and the pool discards the client on release.
  pool.on("connect", (client) => client.on("error", () => {}));
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/** Creates the schema if needed and applies every migration not yet applied; returns the names it applied. */
export async function migrate(db: Db, schema = "public"): Promise<string[]> {
  await sql`CREATE SCHEMA IF NOT EXISTS ${sql.id(schema)}`.execute(db);
  const migrator = new Migrator({ db, provider, migrationTableSchema: schema });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === "Error");
  if (error || failed) throw new Error(`migration ${failed?.migrationName ?? ""} failed: ${String(error)}`);
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}

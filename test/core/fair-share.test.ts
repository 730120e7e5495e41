import { sql } from "kysely";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { claimChunk, createDb, newId, queuedWorkExists } from "@barge/core";
import { createTestContext, type TestContext } from "../support/context.js";

// The claim's fair share (issue 18): tenants by virtual time (requests claimed over weight), ties
// to the tenant served longest ago; within a tenant the earliest deadline, then priority.

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(() => ctx.close());
beforeEach(async () => {
  await sql`TRUNCATE files, batches, chunks, segments, agents, tenants, tenant_shares CASCADE`.execute(ctx.db);
});

const HOUR = 3_600_000;

interface SeedOptions {
  chunks?: number;
  requestsPerChunk?: number;
  priority?: number;
  /** The batch's deadline (`expires_at`); a day from now by default. */
  expiresAt?: Date;
  /** Milliseconds from now to its creation (negative: older). */
  createdIn?: number;
  model?: string;
}

/** Inserts an in_progress batch of `tenant` with queued chunks; returns its id. */
async function seed(tenant: string, o: SeedOptions = {}): Promise<string> {
  const fileId = newId("file-");
  const batchId = newId("batch_");
  const n = o.chunks ?? 1;
  const per = o.requestsPerChunk ?? 12;
  const createdAt = new Date(Date.now() + (o.createdIn ?? 0));
  const expiresAt = o.expiresAt ?? new Date(Date.now() + 24 * HOUR);
  const model = o.model ?? "m";
  const priority = o.priority ?? 0;
  await ctx.db
    .insertInto("files")
    .values({ id: fileId, tenant, purpose: "batch", filename: "in.jsonl", bytes: 0, status: "processed", s3_key: "k", upload_expires_at: null, expires_at: null })
    .execute();
  await ctx.db
    .insertInto("batches")
    .values({
      id: batchId, tenant, status: "in_progress", endpoint: "/v1/chat/completions", model, input_file_id: fileId,
      completion_window: "24h", metadata: JSON.stringify(null), errors: JSON.stringify(null), priority,
      total_requests: n * per, output_file_id: null, error_file_id: null, output_key: null, error_key: null,
      created_at: createdAt, in_progress_at: createdAt, expires_at: expiresAt, finalizing_at: null, completed_at: null,
      failed_at: null, expired_at: null, cancelling_at: null, cancelled_at: null, worker_id: null,
      worker_lease_expires_at: null, stitch_state: JSON.stringify(null),
    })
    .execute();
  await ctx.db
    .insertInto("chunks")
    .values(
      Array.from({ length: n }, (_, i) => ({
        batch_id: batchId, idx: i, model, tenant, expires_at: expiresAt, priority, batch_created_at: createdAt,
        request_start: i * per, request_count: per, start_line: i * per + 1, start_offset: i * 1000,
        end_offset: (i + 1) * 1000, next_offset: i * 1000, next_line: i * per + 1,
      })),
    )
    .execute();
  return batchId;
}

const claim = (agentId = "a", models = ["m"]) => claimChunk(ctx.db, { agentId, models, leaseSeconds: 30 });

/** Claims `n` chunks one after another; each as `tenant`, or `tenant:batch/idx` with `full`. */
async function claims(n: number, full = false): Promise<string[]> {
  const got: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = await claim();
    got.push(c === undefined ? "none" : full ? `${c.tenant}:${c.batch_id}/${c.idx}` : c.tenant);
  }
  return got;
}

describe("fair share between tenants", () => {
  it("alternates two tenants of equal weight, each in its own chunk order", async () => {
    const a = await seed("alpha", { chunks: 3 });
    const b = await seed("beta", { chunks: 3, createdIn: -HOUR });
    expect(await claims(7, true)).toEqual([
      `alpha:${a}/0`, `beta:${b}/0`, `alpha:${a}/1`, `beta:${b}/1`, `alpha:${a}/2`, `beta:${b}/2`, "none",
    ]);
  });

  it("gives weights 3:1 claims 3:1, in requests over weight", async () => {
    await ctx.db.insertInto("tenants").values([{ tenant: "heavy", weight: 3 }, { tenant: "light", weight: 1 }]).execute();
    await seed("heavy", { chunks: 20 });
    await seed("light", { chunks: 20 });
    // heavy's 12-request claims advance it by 4, light's by 12: three of heavy per one of light,
    // ties to the tenant served longest ago.
    const got = await claims(16);
    expect(got).toEqual(["heavy", "light", "heavy", "heavy", "light", "heavy", "heavy", "heavy", "light", "heavy", "heavy", "heavy", "light", "heavy", "heavy", "heavy"]);
    const shares = await ctx.db.selectFrom("tenant_shares").select(["tenant", "model", "pass"]).orderBy("tenant").execute();
    expect(shares).toEqual([{ tenant: "heavy", model: "m", pass: 48 }, { tenant: "light", model: "m", pass: 48 }]);
  });

  it("counts requests, not chunks: a tenant of half-size chunks claims twice as many", async () => {
    await seed("small", { chunks: 10, requestsPerChunk: 6 });
    await seed("whole", { chunks: 10, requestsPerChunk: 12 });
    expect(await claims(9)).toEqual(["small", "whole", "small", "whole", "small", "small", "whole", "small", "small"]);
  });

  it("gives a tenant arriving behind a big batch the next claim", async () => {
    await seed("big", { chunks: 50, createdIn: -HOUR });
    expect(await claims(5)).toEqual(["big", "big", "big", "big", "big"]);
    const late = await seed("late", { chunks: 1 });
    expect(await claims(3, true)).toEqual([`late:${late}/0`, expect.stringMatching(/^big:/), expect.stringMatching(/^big:/)]);
  });

  it("starts a tenant coming back at the model's clock, so its idle time is not replayed", async () => {
    await seed("steady", { chunks: 50 });
    await seed("returning", { chunks: 1 });
    expect(await claims(12)).toEqual(["returning", ...Array.from({ length: 11 }, () => "steady")]);
    await seed("returning", { chunks: 3 });
    expect(await claims(6)).toEqual(["returning", "steady", "returning", "steady", "returning", "steady"]);
  });

  it("keeps a share per model: claims on one model do not count on another", async () => {
    await seed("alpha", { chunks: 5, model: "m2" });
    await seed("beta", { chunks: 5, model: "m" });
    for (let i = 0; i < 4; i++) expect((await claim("a", ["m2"]))?.tenant).toBe("alpha");
    await seed("alpha", { chunks: 5, model: "m" });
    // On "m" alpha is new (the model's clock, tie, never served): it goes first.
    expect(await claims(4)).toEqual(["alpha", "beta", "alpha", "beta"]);
  });
});

describe("order within a tenant", () => {
  it("puts the earlier deadline before a higher priority, then priority, then batch age", async () => {
    const at = (hours: number) => new Date(Date.now() + hours * HOUR);
    const soon = await seed("t", { expiresAt: at(1), priority: 0 });
    const urgent = await seed("t", { expiresAt: at(2), priority: 9 });
    const expiresAt = at(3);
    const older = await seed("t", { expiresAt, priority: 5, createdIn: -60_000 });
    const younger = await seed("t", { expiresAt, priority: 5 });
    const low = await seed("t", { expiresAt, priority: 1, createdIn: -120_000 });
    const order = (await claims(6, true)).map((s) => s.replace(/^t:/, ""));
    expect(order).toEqual([`${soon}/0`, `${urgent}/0`, `${older}/0`, `${younger}/0`, `${low}/0`, "none"]);
  });

  it("skips paused batches, and a tenant whose every batch is paused, until they resume", async () => {
    const paused = await seed("alpha", { chunks: 2, expiresAt: new Date(Date.now() + HOUR) });
    const running = await seed("alpha", { chunks: 2 });
    const onlyPaused = await seed("beta", { chunks: 2 });
    await ctx.db.updateTable("batches").set({ paused_at: new Date() }).where("id", "in", [paused, onlyPaused]).execute();
    expect(await claims(3, true)).toEqual([`alpha:${running}/0`, `alpha:${running}/1`, "none"]);
    await ctx.db.updateTable("batches").set({ paused_at: null }).where("id", "in", [paused, onlyPaused]).execute();
    // beta starts at the clock; alpha has run ahead of it, so beta goes first.
    expect(await claims(5, true)).toEqual([`beta:${onlyPaused}/0`, `alpha:${paused}/0`, `beta:${onlyPaused}/1`, `alpha:${paused}/1`, "none"]);
  });
});

describe("concurrent claimers", () => {
  it("takes the next tenant's chunk when every candidate of the fair tenant is locked", async () => {
    const a = await seed("alpha", { chunks: 20 });
    const b = await seed("beta", { chunks: 2 });
    await ctx.db.transaction().execute(async (tx) => {
      // Alpha is next (a tie, then its id), but another transaction holds every chunk of it.
      await sql`SELECT 1 FROM chunks WHERE batch_id = ${a} FOR UPDATE`.execute(tx);
      const c = await claim("second");
      expect([c?.tenant, c?.batch_id, c?.idx]).toEqual(["beta", b, 0]);
    });
  });

  it("falls back to any unlocked chunk when every candidate is locked", async () => {
    const a = await seed("alpha", { chunks: 20 });
    await ctx.db.transaction().execute(async (tx) => {
      await sql`SELECT 1 FROM chunks WHERE batch_id = ${a} AND idx < 16 FOR UPDATE`.execute(tx);
      const c = await claim("second");
      expect([c?.batch_id, c?.idx, c?.status, c?.leased_by]).toEqual([a, 16, "leased", "second"]);
    });
    const shares = await ctx.db.selectFrom("tenant_shares").select(["tenant", "pass"]).execute();
    expect(shares).toEqual([{ tenant: "alpha", pass: 12 }]);
  });

  it("never double-claims across several connections, and claims exactly every chunk once", async () => {
    const batches = [];
    for (const tenant of ["alpha", "beta", "gamma"]) {
      for (let i = 0; i < 4; i++) batches.push({ id: await seed(tenant, { chunks: 10 }), tenant });
    }
    const dbs = Array.from({ length: 6 }, () => createDb({ url: ctx.env.DATABASE_URL!, schema: ctx.env.DATABASE_SCHEMA!, maxConnections: 1 }));
    try {
      const perClaimer = await Promise.all(
        dbs.map(async (db, i) => {
          const got: string[] = [];
          for (;;) {
            const c = await claimChunk(db, { agentId: `agent-${i}`, models: ["m"], leaseSeconds: 30 });
            if (!c) return got;
            expect([c.status, c.fence, c.attempts]).toEqual(["leased", 1, 1]);
            got.push(`${c.batch_id}/${c.idx}`);
          }
        }),
      );
      const all = perClaimer.flat();
      expect(all.length).toBe(120);
      expect(new Set(all)).toEqual(new Set(batches.flatMap((b) => Array.from({ length: 10 }, (_, i) => `${b.id}/${i}`))));
    } finally {
      await Promise.all(dbs.map((db) => db.destroy()));
    }
    const left = await ctx.db.selectFrom("chunks").select((eb) => eb.fn.countAll<string>().as("n")).where("status", "=", "queued").executeTakeFirstOrThrow();
    expect(Number(left.n)).toBe(0);
    const events = await ctx.db.selectFrom("batch_events").select((eb) => eb.fn.countAll<string>().as("n")).where("kind", "=", "chunk_claimed").executeTakeFirstOrThrow();
    expect(Number(events.n)).toBe(120);
  });
});

describe("the idle probe before the claim", () => {
  it("says yes exactly while a chunk of a served model is queued", async () => {
    expect(await queuedWorkExists(ctx.db, ["m"])).toBe(false);
    await seed("t1", { chunks: 2, model: "m" });
    expect(await queuedWorkExists(ctx.db, ["m"])).toBe(true);
    expect(await queuedWorkExists(ctx.db, ["other"])).toBe(false);
    expect(await queuedWorkExists(ctx.db, ["other", "m"])).toBe(true);
    expect(await queuedWorkExists(ctx.db, [])).toBe(false);
    expect(await claims(2)).toEqual(["t1", "t1"]);
    // Both chunks leased: nothing queued is left, so an idle agent would not claim.
    expect(await queuedWorkExists(ctx.db, ["m"])).toBe(false);
  });
});

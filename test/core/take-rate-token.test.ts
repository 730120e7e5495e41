import { sql } from "kysely";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { createDb, takeRateToken, type Db } from "@barge/core";
import { createTestContext, type TestContext } from "../support/context.js";

// GCRA in one statement on real Postgres: a burst of exactly `limit`, then one token per
// interval; each tenant and name its own bucket; racing takes from many connections (the
// replicas' pools) let exactly `limit` through.

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(() => ctx.close());
beforeEach(async () => {
  await sql`TRUNCATE rate_limits`.execute(ctx.db);
});

const take = (db: Db, tenant = "a", name = "batch_creates_per_minute", limit = 3) => takeRateToken(db, { tenant, name, limit, windowSeconds: 60 });

/** Moves a bucket's arrival time back, as if `seconds` had passed since its takes. */
const age = (tenant: string, seconds: number) =>
  sql`UPDATE rate_limits SET tat = tat - make_interval(secs => ${seconds}) WHERE tenant = ${tenant}`.execute(ctx.db);

describe("takeRateToken", () => {
  test("a full bucket lets a burst of exactly the limit through, counting down, then refuses", async () => {
    const answers = [await take(ctx.db), await take(ctx.db), await take(ctx.db), await take(ctx.db)];
    expect(answers.map((a) => [a.allowed, a.limit, a.remaining])).toEqual([
      [true, 3, 2],
      [true, 3, 1],
      [true, 3, 0],
      [false, 3, 0],
    ]);
    // One interval (20 s) per take ahead of now: the first is back in 20 s, all three in 60 s.
    expect(Math.ceil(answers[0]!.resetSeconds)).toBe(20);
    expect(Math.ceil(answers[2]!.resetSeconds)).toBe(60);
    expect(answers.slice(0, 3).map((a) => a.retryAfterSeconds)).toEqual([0, 0, 0]);
    expect(Math.ceil(answers[3]!.retryAfterSeconds)).toBe(20);
    // A refusal spends nothing: the row is as the third take left it.
    expect(Math.ceil(answers[3]!.resetSeconds)).toBe(60);
  });

  test("tokens come back one interval at a time", async () => {
    for (let i = 0; i < 3; i++) expect((await take(ctx.db)).allowed).toBe(true);
    await age("a", 21);
    const back = await take(ctx.db);
    expect([back.allowed, back.remaining]).toEqual([true, 0]);
    expect((await take(ctx.db)).allowed).toBe(false);
    // Long idle: the bucket is whole again, never more than whole.
    await age("a", 3600);
    expect((await take(ctx.db)).remaining).toBe(2);
  });

  test("each tenant and each limit name has its own bucket", async () => {
    for (let i = 0; i < 3; i++) await take(ctx.db, "a");
    expect((await take(ctx.db, "a")).allowed).toBe(false);
    expect((await take(ctx.db, "b")).remaining).toBe(2);
    expect((await take(ctx.db, "a", "file_uploads_per_minute")).remaining).toBe(2);
    const rows = await ctx.db.selectFrom("rate_limits").select(["tenant", "name"]).orderBy("tenant").orderBy("name").execute();
    expect(rows).toEqual([
      { tenant: "a", name: "batch_creates_per_minute" },
      { tenant: "a", name: "file_uploads_per_minute" },
      { tenant: "b", name: "batch_creates_per_minute" },
    ]);
  });

  test("a limit of 1 per minute allows one, then asks for the whole minute", async () => {
    expect((await take(ctx.db, "one", "x", 1)).remaining).toBe(0);
    const refused = await take(ctx.db, "one", "x", 1);
    expect(refused.allowed).toBe(false);
    expect(Math.ceil(refused.retryAfterSeconds)).toBe(60);
  });

  test("racing takes from four pools of many connections: exactly the limit succeed per tenant", async () => {
    const pools = Array.from({ length: 4 }, () => createDb({ url: ctx.env.DATABASE_URL!, schema: ctx.env.DATABASE_SCHEMA!, maxConnections: 6 }));
    try {
      // Both tenants' buckets are new, so the first takes race on the insert as well.
      const tries = Array.from({ length: 80 }, (_, i) => take(pools[i % pools.length]!, i % 2 === 0 ? "a" : "b", "race", 7));
      const answers = await Promise.all(tries);
      const allowedOf = (parity: number) => answers.filter((a, i) => i % 2 === parity && a.allowed);
      expect(allowedOf(0).length).toBe(7);
      expect(allowedOf(1).length).toBe(7);
      // Each allowed take saw a distinct count of what was left.
      expect(allowedOf(0).map((a) => a.remaining).sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
      expect(allowedOf(1).map((a) => a.remaining).sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    } finally {
      await Promise.all(pools.map((p) => p.destroy()));
    }
  });
});

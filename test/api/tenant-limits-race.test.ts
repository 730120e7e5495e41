import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { TenantLimitOverrides } from "@barge/core";
import { createTestContext, type TestContext } from "../support/context.js";
import { putInputFile } from "../support/seed.js";

// The limits hold across replicas: three API replicas, each its own OS process with its own
// pool, on one database, fire batch creates for three tenants at once, each replica spreading
// its creates over all three. Exactly each tenant's limit succeed, whatever the others do. The
// limits are small, so no token comes back (every 60/limit seconds) while the burst runs.

const racer = fileURLToPath(new URL("../support/limits-racer.ts", import.meta.url));
const REPLICAS = 3;
const PER_REPLICA = 6;

let ctx: TestContext;
const procs: ChildProcess[] = [];

beforeAll(async () => {
  ctx = await createTestContext({ TENANT_BATCH_CREATES_PER_MINUTE: "10" });
});
afterAll(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) process.kill(p.pid!, "SIGKILL");
  await ctx?.close();
});

async function tenant(name: string, limits: TenantLimitOverrides) {
  const key = `sk-${name}-${randomBytes(12).toString("hex")}`;
  await ctx.db
    .insertInto("api_keys")
    .values({ id: `key_${randomBytes(8).toString("hex")}`, tenant: name, name: "race", key_hash: createHash("sha256").update(key).digest("hex"), redacted: `sk-…${key.slice(-4)}` })
    .execute();
  await ctx.db.insertInto("tenants").values({ tenant: name, limits: JSON.stringify(limits) }).execute();
  const { fileId } = await putInputFile(ctx, '{"custom_id":"r","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}\n', name);
  return { tenant: name, key, fileId, count: PER_REPLICA };
}

/** Starts one replica; resolves with it and a reader of its stdout lines. */
function startReplica(plan: unknown[]): { proc: ChildProcess; next(): Promise<any> } {
  const proc = spawn(process.execPath, ["--import", "tsx", racer], { env: { ...process.env, ...ctx.env, RACE_PLAN: JSON.stringify(plan) }, stdio: ["pipe", "pipe", "inherit"] });
  procs.push(proc);
  const queue: string[] = [];
  const waiting: ((l: string) => void)[] = [];
  createInterface({ input: proc.stdout! }).on("line", (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else queue.push(l);
  });
  const exited = new Promise<never>((_, reject) => proc.once("exit", (code) => reject(new Error(`replica ${proc.pid} exited with ${code}`))));
  const next = () => Promise.race([new Promise<string>((resolve) => (queue.length ? resolve(queue.shift()!) : waiting.push(resolve))), exited]).then((l) => JSON.parse(l));
  return { proc, next };
}

describe("tenant limits across replicas", () => {
  test("three processes racing: exactly each tenant's limit of creates succeed, independently", async () => {
    const plan = [
      await tenant("race-a", { batch_creates_per_minute: 3 }),
      await tenant("race-b", { batch_creates_per_minute: 5 }),
      await tenant("race-c", { batch_creates_per_minute: null, max_active_batches: 4 }),
    ];
    const replicas = Array.from({ length: REPLICAS }, () => startReplica(plan));
    const urls = (await Promise.all(replicas.map((r) => r.next()))).map((m: { url: string }) => m.url);
    for (const r of replicas) r.proc.stdin!.write(`${JSON.stringify({ urls })}\n`);
    const answers = (await Promise.all(replicas.map((r) => r.next()))) as Record<string, [number, string | null][]>[];
    for (const r of replicas) r.proc.stdin!.end("done\n");

    const of = (name: string) => answers.flatMap((a) => a[name]!);
    const tally = (name: string) => {
      const counts: Record<string, number> = {};
      for (const [status, code] of of(name)) counts[`${status} ${code ?? ""}`.trim()] = (counts[`${status} ${code ?? ""}`.trim()] ?? 0) + 1;
      return counts;
    };
    expect(tally("race-a")).toEqual({ "200": 3, "429 rate_limit_exceeded": 15 });
    expect(tally("race-b")).toEqual({ "200": 5, "429 rate_limit_exceeded": 13 });
    expect(tally("race-c")).toEqual({ "200": 4, "429 max_active_batches_exceeded": 14 });
    const rows = await ctx.db.selectFrom("batches").select(({ fn }) => ["tenant", fn.countAll<number>().as("n")]).groupBy("tenant").orderBy("tenant").execute();
    expect(rows).toEqual([
      { tenant: "race-a", n: 3 },
      { tenant: "race-b", n: 5 },
      { tenant: "race-c", n: 4 },
    ]);
  }, 120_000);
});

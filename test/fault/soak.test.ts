import { join } from "node:path";
import { toFile } from "openai/uploads";
import { describe, expect, it } from "vitest";
import { startEmbeddedPostgres } from "@barge/devstack";
import { expectedBody, mulberry32 } from "@barge/engine-sim";
import { sdkClient } from "../support/api-harness.js";
import type { TestContext } from "../support/context.js";
import { faultSuite } from "../support/fault-suite.js";
import { eventually, type Child } from "../support/processes.js";
import { batchRow, committedCount, readResults, requestIndexOf, type ResultLine } from "../support/results.js";
import { chatLine, seedBatch, segmentsGone } from "../support/seed.js";

// The combined-fault soak: a mixed workload on real Postgres, s3rver behind a proxy that can
// cut it off, engine-sim and two agent processes, while a seeded schedule SIGKILLs agents,
// takes S3 away and restarts Postgres. Only end states are asserted, never how long anything took.

const SEED = Number(process.env.SOAK_SEED ?? 20261204);
const GOOD_LINES = 200;
const CANCEL_LINES = 300;
/** Requests of the engine-poisoned batch the engine-sim always answers 400. */
const ENGINE_POISON = new Set([13, 77, 150]);
/** Where the validation-poisoned inputs go wrong (1-based lines). */
const NUL_LINE = 37;
const UTF8_LINE = 58;
const FINAL = new Set(["completed", "failed", "cancelled", "expired"]);

type Kind = "good" | "engine-poison" | "cancel";
interface Planned {
  name: string;
  kind: Kind;
  requests: ReturnType<typeof chatLine>[];
}

/** The seeded batches, in creation (and so claim) order; cancelled ones sit between good ones. */
function workload(): Planned[] {
  const lines = (prefix: string, n: number, poison = new Set<number>()) =>
    Array.from({ length: n }, (_, i) => chatLine(`${prefix}-${i}`, poison.has(i) ? `__sim_fail_400__ ${prefix} ${i}` : `soak ${prefix} line ${i}`));
  const good = (k: number): Planned => ({ name: `good-${k}`, kind: "good", requests: lines(`g${k}`, GOOD_LINES) });
  return [
    good(0),
    { name: "cancel-0", kind: "cancel", requests: lines("c0", CANCEL_LINES) },
    good(1),
    { name: "engine-poison", kind: "engine-poison", requests: lines("p", GOOD_LINES, ENGINE_POISON) },
    good(2),
    good(3),
    { name: "cancel-1", kind: "cancel", requests: lines("c1", CANCEL_LINES) },
    good(4),
    good(5),
  ];
}

/** A validation-poisoned input: good lines with one bad line at `badLine`. */
function poisonedFile(prefix: string, badLine: number, bad: Buffer): Buffer {
  const parts = Array.from({ length: 80 }, (_, i) => (i + 1 === badLine ? bad : Buffer.from(JSON.stringify(chatLine(`${prefix}-${i}`, `never runs ${i}`)))));
  return Buffer.concat(parts.flatMap((p) => [p, Buffer.from("\n")]));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("fault: the combined-fault soak", () => {
  const suite = faultSuite();
  const { children } = suite;

  it("good batches complete exactly once in order, poisoned ones fail clearly, cancels stop cleanly, through kills, S3 pauses and a Postgres restart", async () => {
    const rand = mulberry32(SEED);
    console.log(`[soak] seed ${SEED} (set SOAK_SEED to replay another schedule)`);
    const dir = suite.tempDir("barge-soak-pg-");
    const pg = await startEmbeddedPostgres(join(dir, "pg"));
    suite.cleanup(() => pg.stop());
    const ctx: TestContext = await suite.context({
      DATABASE_URL: pg.url,
      CHUNK_SIZE: "25",
      SEGMENT_MAX_LINES: "5",
      SEGMENT_MAX_MS: "300",
      LEASE_SECONDS: "3",
      AGENT_POLL_MS: "50",
      API_POLL_MS: "50",
      AGENT_CONCURRENCY: "4",
      AGENT_MAX_CONCURRENCY: "4",
      // Kills and outages each cost a good chunk a claim; the cap stays above what the schedule can do.
      CHUNK_MAX_ATTEMPTS: "20",
    });
    const { proxy, s3: viaProxy } = await suite.s3Proxy(ctx);
    const sim = await suite.sim({ models: ["barge-sim-1"], decodeTokensPerSec: 150 });
    const api = await suite.api(ctx, viaProxy);
    const client = sdkClient(api.url);

    const plan = workload();
    const seeded = new Map<string, Planned>();
    for (const p of plan) seeded.set((await seedBatch(ctx, p.requests)).batchId, p);
    const invalid = new Map<string, { name: string; code: string; line: number; param: string | null }>();
    const nul = Buffer.from(JSON.stringify(chatLine("v0-nul\u0000", "hi")));
    const [head, tail] = JSON.stringify(chatLine("v1-@", "hi")).split("@");
    const badUtf8 = Buffer.concat([Buffer.from(head!), Buffer.from([0xff, 0xfe]), Buffer.from(tail!)]);
    /** Uploads and batches a bad file through the SDK; a call the API could not serve (an outage just ended) is made again. */
    const submitInvalid = async (name: string, bytes: Buffer, want: { code: string; line: number; param: string | null }) => {
      const f = await eventually(`${name} to upload`, async () => client.files.create({ file: await toFile(bytes, `${name}.jsonl`), purpose: "batch" }));
      const b = await eventually(`${name}'s batch to be created`, () => client.batches.create({ input_file_id: f.id, endpoint: "/v1/chat/completions", completion_window: "24h" }));
      invalid.set(b.id, { name, ...want });
    };
    await submitInvalid("nul-custom-id", poisonedFile("v0", NUL_LINE, nul), { code: "invalid_string", line: NUL_LINE, param: "custom_id" });
    const ids = [...seeded.keys()];
    const probeFileId = (await ctx.db.selectFrom("batches").select("input_file_id").where("id", "=", ids[0]!).executeTakeFirstOrThrow()).input_file_id;
    const idOf = (name: string) => ids.find((id) => seeded.get(id)!.name === name)!;

    // Agent processes start through tsx, which takes a while on a loaded box; waits are bounded.
    const registered = (agentId: string) =>
      eventually(`agent ${agentId} to register`, async () => (await ctx.db.selectFrom("agents").select("id").where("id", "=", agentId).executeTakeFirst()) !== undefined, 120_000);
    const agentEnv = { ...ctx.env, S3_ENDPOINT: proxy.url, VLLM_URL: sim.url };
    const started: Child[] = [];
    const startAgent = (id: string) => {
      const a = children.agent(agentEnv, id);
      started.push(a);
      return a;
    };
    const liveIds = ["soak-a-0", "soak-b-0"];
    const live = liveIds.map(startAgent);
    for (const id of liveIds) await registered(id);
    await eventually("the first commits", async () => (await committedCount(ctx, ids[0]!)) >= 10);

    // The schedule: fixed kinds in a fixed order, the gaps and outage lengths drawn from the seed.
    const gap = () => 2_000 + Math.round(rand() * 3_000);
    const schedule = [
      { fault: "kill", agent: 0, before: gap() },
      { fault: "s3-pause", ms: 3_000 + Math.round(rand() * 2_000), before: gap() },
      { fault: "pg-restart", ms: 1_000 + Math.round(rand() * 1_000), before: gap() },
      { fault: "kill", agent: 1, before: gap() },
      { fault: "s3-pause", ms: 3_000 + Math.round(rand() * 2_000), before: gap() },
    ] as const;
    console.log(`[soak] schedule ${JSON.stringify(schedule)}`);
    const t0 = Date.now();
    const note = (what: string) => console.log(`[soak] +${((Date.now() - t0) / 1000).toFixed(1)}s ${what}`);
    const killed: (number | null)[] = [];
    const outageAnswers: number[] = [];
    let heldAtKills = 0;
    const noticed: string[] = [];
    const count = (msgs: string[], m: string) => msgs.filter((x) => x === m).length;
    /** Every warning the agents started here have logged; what an outage made them say is printed, not asserted (it depends on what they were doing). */
    const warnings = () => started.flatMap((a) => a.logs().filter((l) => (l.level as number) >= 40).map((l) => String(l.msg)));
    const runSchedule = async () => {
      let generation = 1;
      for (const step of schedule) {
        await sleep(step.before);
        if (step.fault === "kill") {
          const victim = live[step.agent]!;
          const victimId = liveIds[step.agent]!;
          // Mid-chunk, so the kill leaves a lease to lapse and work to redo.
          const leasesOf = async () => (await ctx.db.selectFrom("chunks").select("idx").where("status", "=", "leased").where("leased_by", "=", victimId).execute()).length;
          await eventually(`${victimId} to hold a lease`, async () => (await leasesOf()) > 0);
          victim.signal("SIGKILL");
          killed.push(await victim.exited);
          // The dead agent renews nothing more: what it holds now lapses and counts as a crashed claim.
          heldAtKills += await leasesOf();
          liveIds[step.agent] = `soak-${step.agent === 0 ? "a" : "b"}-${generation++}`;
          live[step.agent] = startAgent(liveIds[step.agent]!);
          note(`SIGKILLed agent pid ${victim.pid}, started pid ${live[step.agent]!.pid}`);
          // The next fault waits for the replacement, so two agents share the work again.
          await registered(liveIds[step.agent]!);
          note(`${liveIds[step.agent]} registered`);
        } else {
          const before = warnings();
          if (step.fault === "s3-pause") {
            await proxy.down();
            note(`S3 down for ${step.ms} ms`);
            const pausedUntil = Date.now() + step.ms;
            // The outage is real for everything behind the proxy: the API cannot serve a file's content.
            outageAnswers.push((await fetch(`${api.url}/v1/files/${probeFileId}/content`)).status);
            await sleep(Math.max(0, pausedUntil - Date.now()));
            await proxy.up();
          } else {
            await pg.stop();
            note(`Postgres stopped for ${step.ms} ms`);
            const downUntil = Date.now() + step.ms;
            outageAnswers.push((await fetch(`${api.url}/v1/batches/${ids[0]}`)).status);
            await sleep(Math.max(0, downUntil - Date.now()));
            await pg.start();
            // A bad file arrives on the restarted database, while the others run.
            await submitInvalid("invalid-utf8", poisonedFile("v1", UTF8_LINE, badUtf8), { code: "invalid_utf8", line: UTF8_LINE, param: null });
          }
          await sleep(1_000);
          const now = warnings();
          noticed.push(`${step.fault}: ${[...new Set(now)].filter((m) => count(now, m) > count(before, m)).join(" / ") || "nothing logged"}`);
        }
      }
      note("schedule done");
    };
    // Each cancel lands once its batch has committed some of its requests, whatever fault is on.
    const cancelMidRun = async (name: string) => {
      const id = idOf(name);
      await eventually(`${name} to be mid-run`, async () => (await committedCount(ctx, id)) >= 10, 180_000);
      const res = await eventually(`${name}'s cancel to be answered`, async () => {
        const r = await fetch(`${api.url}/v1/batches/${id}/cancel`, { method: "POST" });
        return r.status === 200 ? ((await r.json()) as { status: string }) : undefined;
      });
      note(`cancelled ${name}`);
      expect(["cancelling", "cancelled"]).toContain(res.status);
    };
    await Promise.all([runSchedule(), cancelMidRun("cancel-0"), cancelMidRun("cancel-1")]);
    expect(killed).toEqual([null, null]);
    // Each S3 pause and the Postgres restart refused the API a read: a 503 to retry, in the schedule's order.
    expect(outageAnswers).toEqual([503, 503, 503]);

    // Every batch reaches a final state; a stall names each batch still moving and where it is.
    const all = [...ids, ...invalid.keys()];
    const nameOf = (id: string) => seeded.get(id)?.name ?? invalid.get(id)!.name;
    let pending: string[] = [];
    try {
      await eventually("every batch to be final", async () => {
        const rows = await ctx.db.selectFrom("batches").select(["id", "status"]).where("id", "in", all).execute();
        pending = rows.filter((r) => !FINAL.has(r.status)).map((r) => `${nameOf(r.id)} (${r.id}): ${r.status}`);
        return rows.length === all.length && pending.length === 0;
      }, 150_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}; still not final: ${pending.join(", ")}`);
    }
    note("every batch final");

    const counts = async (id: string) => (await (await fetch(`${api.url}/v1/batches/${id}`)).json()) as { status: string; request_counts: { total: number; completed: number; failed: number }; errors: { data: { code: string; line: number; param: string | null }[] } | null };
    /** Checks each output line is its request's, with the body the engine-sim gives that request. */
    const answered = (p: Planned, lines: ResultLine[]) => {
      for (const l of lines) {
        const i = requestIndexOf(l.response?.request_id);
        expect(l.custom_id).toBe(p.requests[i]!.custom_id);
        expect(l.response?.status_code).toBe(200);
        const { created: _created, ...body } = l.response!.body;
        expect(body, `${p.name} line ${l.custom_id}`).toEqual(expectedBody("/v1/chat/completions", p.requests[i]!.body));
      }
    };
    for (const [id, p] of seeded) {
      const batch = await batchRow(ctx, id);
      const view = await counts(id);
      const { output, errors } = await readResults(ctx, batch);
      const n = p.requests.length;
      const order = (lines: ResultLine[]) => lines.map((l) => p.requests.findIndex((r) => r.custom_id === l.custom_id));
      if (p.kind === "good") {
        expect([p.name, batch.status, view.request_counts]).toEqual([p.name, "completed", { total: n, completed: n, failed: 0 }]);
        expect(errors).toEqual([]);
        expect(output.map((l) => l.custom_id)).toEqual(p.requests.map((r) => r.custom_id));
        answered(p, output);
      } else if (p.kind === "engine-poison") {
        const failed = [...ENGINE_POISON].sort((a, b) => a - b);
        expect([p.name, batch.status, view.request_counts]).toEqual([p.name, "completed", { total: n, completed: n - failed.length, failed: failed.length }]);
        expect(output.map((l) => l.custom_id)).toEqual(p.requests.filter((_, i) => !ENGINE_POISON.has(i)).map((r) => r.custom_id));
        answered(p, output);
        expect(errors.map((l) => [l.custom_id, l.response?.status_code])).toEqual(failed.map((i) => [p.requests[i]!.custom_id, 400]));
        const rows = await ctx.db.selectFrom("request_errors").select(["request_index", "code", "status_code"]).where("batch_id", "=", id).orderBy("request_index").execute();
        expect(rows).toEqual(failed.map((i) => ({ request_index: i, code: "engine_error", status_code: 400 })));
      } else {
        // A cancel keeps what was committed: an in-order subset of the input, each request once.
        expect([p.name, batch.status]).toEqual([p.name, "cancelled"]);
        const { completed, failed, total } = view.request_counts;
        expect(total).toBe(n);
        expect(completed + failed).toBeLessThanOrEqual(total);
        expect([output.length, errors.length]).toEqual([completed, failed]);
        const at = order(output);
        expect(at.every((i, k) => i >= 0 && (k === 0 || i > at[k - 1]!)), `${p.name} output in input order, no duplicates`).toBe(true);
        expect(errors).toEqual([]);
        answered(p, output);
        note(`${p.name} kept ${completed} of ${total}`);
      }
      await segmentsGone(ctx, id);
    }
    for (const [id, want] of invalid) {
      const view = await counts(id);
      expect([want.name, view.status, view.errors?.data.map((e) => ({ code: e.code, line: e.line, param: e.param ?? null }))]).toEqual([
        want.name,
        "failed",
        [{ code: want.code, line: want.line, param: want.param }],
      ]);
    }
    expect(await ctx.db.selectFrom("chunks").select(["batch_id", "idx", "leased_by"]).where("status", "=", "leased").execute()).toEqual([]);
    // The kills did cost claims: every lease a killed agent left behind was counted against its chunk.
    const failures = await ctx.db.selectFrom("chunks").select((eb) => eb.fn.sum<number>("failures").as("n")).executeTakeFirstOrThrow();
    expect(heldAtKills).toBeGreaterThan(0);
    expect(Number(failures.n)).toBeGreaterThanOrEqual(heldAtKills);
    expect(await ctx.db.selectFrom("chunks").select("batch_id").where("batch_id", "in", [...invalid.keys()]).execute()).toEqual([]);

    // Every agent started here is stopped by its PID: the two killed ones already were; the
    // survivors are still up after it all, and stop cleanly on SIGTERM.
    for (const a of live) {
      expect([a.process.exitCode, a.process.signalCode], `agent pid ${a.pid} still running at the end`).toEqual([null, null]);
      a.signal("SIGTERM");
      expect(await a.exited, `agent pid ${a.pid}'s exit code`).toBe(0);
    }
    expect(started.map((a) => a.process.exitCode ?? a.process.signalCode)).toEqual(started.map((a) => (live.includes(a) ? 0 : "SIGKILL")));
    note(`outages as the agents logged them: ${noticed.join("; ")}; leases held at kills: ${heldAtKills}`);
    note(`done, ${sim.requests().length} engine requests for ${[...seeded.values()].reduce((s, p) => s + p.requests.length, 0)} seeded lines`);
  }, 300_000);
});

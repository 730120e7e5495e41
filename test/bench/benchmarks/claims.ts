import { setMaxListeners } from "node:events";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "kysely";
import {
  FINALIZABLE_BATCH_STATUSES,
  claimBatchWork,
  claimChunk,
  queuedWorkExists,
  createDb,
  enqueueChunks,
  expireBatches,
  findLeftoverSegments,
  forgetDepartedAgents,
  loadConfig,
  newId,
  registerAgent,
  rescueExpiredChunks,
  type Db,
} from "@barge/core";
import {
  MODEL,
  atLeast,
  atMost,
  round,
  startBenchStack,
  treeCpuSeconds,
  type BenchContext,
  type BenchStack,
  type Benchmark,
} from "../harness.js";
import { fleetRates } from "../harness/fleet-rates.js";

// The queue's database side at fleet size, on one PostgreSQL over real connections (one per
// claimer, as one per agent): the claim statement (core's claimChunk, as the agent calls it)
// from 64, 256 and 1,000 concurrent claimers claiming back to back, and the idle load of 1,000
// agents polling an empty queue every AGENT_POLL_MS. The idle agents are stand-ins (one
// connection and the same core statements on the same timers as the agent's claim loop,
// heartbeat and housekeeping), since a node process per agent would not fit the machine; one real
// agent process, idle beside them afterwards, checks the stand-in's statement rate.

const LEVELS = [64, 256, 1000];
/** A queue ten times the default limits' depth, to show how a claim's cost grows with it. */
const DEEP_QUEUE_FACTOR = 10;
/** Connections beyond the largest level: the runner's pool, a real agent's, the server's own. */
const MAX_CONNECTIONS = 1100;
/** AGENT_POLL_MS for a fleet of a thousand agents (docs/scaling.md). */
const SLOW_POLL_MS = 5000;
const DEPARTED_AGENT_SECONDS = 24 * 3600;
const LEFTOVER_SWEEP = 10;

export const claims: Benchmark = {
  name: "claims",
  title: "claim statement rate and p99 at 64/256/1,000 claimers; idle polling of 1,000 agents",
  async run(ctx) {
    const claimSeconds = ctx.opts.quick ? 3 : 10;
    const idleSeconds = ctx.opts.quick ? 8 : 40;
    const agentSeconds = ctx.opts.quick ? 8 : 40;
    const idleAgents = 1000;
    const defaults = loadConfig({});
    // The deepest queue the default limits allow: MAX_QUEUED_REQUESTS in chunks of CHUNK_SIZE.
    const chunksPerLevel = Math.ceil(defaults.MAX_QUEUED_REQUESTS / defaults.CHUNK_SIZE);
    Object.assign(ctx.config, {
      levels: LEVELS,
      claim_seconds: claimSeconds,
      chunks_per_level: chunksPerLevel,
      idle_agents: idleAgents,
      idle_seconds: idleSeconds,
      pg_max_connections: MAX_CONNECTIONS,
      AGENT_POLL_MS: defaults.AGENT_POLL_MS,
      LEASE_SECONDS: defaults.LEASE_SECONDS,
    });
    const stack = await startBenchStack({
      bench: ctx.name,
      opts: ctx.opts,
      scope: ctx.scope,
      workDir: ctx.workDir,
      sim: { maxNumSeqs: 16, prefillTokensPerSec: 0, decodeTokensPerSec: 0 },
      pgMaxConnections: MAX_CONNECTIONS,
    });
    const pgVersion = await sql<{ v: string }>`SELECT current_setting('server_version') AS v`.execute(stack.db);
    ctx.figures.postgres_version = pgVersion.rows[0]?.v;

    const levels: Record<string, ClaimLevel> = {};
    for (const c of LEVELS) {
      levels[c] = await claimLevel(ctx, stack, c, chunksPerLevel, claimSeconds);
      ctx.figures.claims = levels;
    }
    const deep = await claimLevel(ctx, stack, 256, chunksPerLevel * DEEP_QUEUE_FACTOR, claimSeconds);
    ctx.figures.claims_deep_queue = deep;

    await emptyQueue(stack.db);
    const idle = await idlePolling(ctx, stack, idleAgents, idleSeconds, defaults);
    ctx.figures.idle_polling = idle;
    // The setting docs/scaling.md gives a 1,000-agent fleet: new work then waits up to 5 s, against chunks of minutes.
    const slow = await idlePolling(ctx, stack, idleAgents, idleSeconds, { ...defaults, AGENT_POLL_MS: SLOW_POLL_MS });
    ctx.figures.idle_polling_at_slow_poll = { AGENT_POLL_MS: SLOW_POLL_MS, ...slow };
    const real = await realIdleAgent(ctx, stack, agentSeconds);
    ctx.figures.real_idle_agent = real;
    ctx.figures.stand_in_vs_real_statements_per_agent =
      real.statements_per_s > 0 ? round(idle.statements_per_s_per_agent / real.statements_per_s, 2) : null;
    ctx.figures.per_1000_gpus = fleetRates(defaults, 1000);
    ctx.notes.push(
      "claimers claim back to back (a claim storm): real agents claim once per chunk, far less often; see per_1000_gpus",
      "the runner's own CPU (runner_cpu_cores) shares the machine's cores with PostgreSQL",
    );

    return [
      atLeast("claims/s at 256 concurrent claimers", levels[256]?.claims_per_s ?? null, 1000, "claims/s"),
      atMost("claim p99 at 1,000 concurrent claimers", levels[1000]?.latency_ms.p99 ?? null, 2000, "ms"),
      atMost("PostgreSQL CPU of 1,000 idle agents polling", idle.pg_cpu_cores, 0.5, "cores"),
      atMost(`PostgreSQL CPU of 1,000 idle agents at AGENT_POLL_MS=${SLOW_POLL_MS}`, slow.pg_cpu_cores, 0.5, "cores"),
    ];
  },
};

interface ClaimLevel {
  claimers: number;
  claims: number;
  seconds: number;
  claims_per_s: number;
  latency_ms: Latency;
  pg_cpu_cores: number;
  runner_cpu_cores: number;
  /** Chunks leased at the end against claims returned: a double claim would show here. */
  leased_rows: number;
  exhausted: boolean;
}

/** `claimers` connections claiming chunks of a fresh queue back to back for `seconds`. */
async function claimLevel(ctx: BenchContext, stack: BenchStack, claimers: number, chunks: number, seconds: number): Promise<ClaimLevel> {
  await emptyQueue(stack.db);
  await seedQueue(stack.db, chunks);
  const db = createDb({ url: stack.env.DATABASE_URL!, maxConnections: claimers });
  try {
    await openConnections(db, claimers);
    const latencies: number[] = [];
    let exhausted = false;
    const cpu0 = treeCpuSeconds(stack.pgPid());
    const runner0 = process.cpuUsage();
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    await Promise.all(
      Array.from({ length: claimers }, async (_, i) => {
        while (performance.now() < end && !exhausted) {
          const s = performance.now();
          const row = await claimChunk(db, { agentId: `claimer-${i}`, models: [MODEL], leaseSeconds: 600, poisonAt: 5 });
          if (!row) {
            exhausted = true;
            return;
          }
          latencies.push(performance.now() - s);
        }
      }),
    );
    const wall = (performance.now() - t0) / 1000;
    const pgCpu = treeCpuSeconds(stack.pgPid()) - cpu0;
    const runner = process.cpuUsage(runner0);
    const leased = await stack.db.selectFrom("chunks").select((eb) => eb.fn.countAll<number>().as("n")).where("status", "=", "leased").executeTakeFirstOrThrow();
    const level: ClaimLevel = {
      claimers,
      claims: latencies.length,
      seconds: round(wall, 2),
      claims_per_s: round(latencies.length / wall, 0),
      latency_ms: latency(latencies),
      pg_cpu_cores: round(pgCpu / wall, 2),
      runner_cpu_cores: round((runner.user + runner.system) / 1e6 / wall, 2),
      leased_rows: Number(leased.n),
      exhausted,
    };
    ctx.log(`${claimers} claimers: ${level.claims_per_s} claims/s, p99 ${level.latency_ms.p99} ms, postgres ${level.pg_cpu_cores} cores`);
    if (level.leased_rows !== level.claims) throw new Error(`${level.claims} claims returned but ${level.leased_rows} chunks leased`);
    return level;
  } finally {
    await db.destroy();
  }
}

interface IdlePolling {
  agents: number;
  seconds: number;
  statements: number;
  statements_per_s: number;
  statements_per_s_per_agent: number;
  /** Transactions committed server-side over the window (pg_stat_database), per second. */
  pg_xact_per_s: number;
  pg_cpu_cores: number;
  runner_cpu_cores: number;
  poll_latency_ms: Latency;
}

/**
 * `agents` stand-ins for idle agents, each on its own connection, started at random phases: every
 * AGENT_POLL_MS the claim loop's pass (a finalizable batch, then a chunk), every LEASE_SECONDS
 * the heartbeat, every LEASE_SECONDS/2 the housekeeping's four statements.
 */
async function idlePolling(
  ctx: BenchContext,
  stack: BenchStack,
  agents: number,
  seconds: number,
  config: { AGENT_POLL_MS: number; LEASE_SECONDS: number },
): Promise<IdlePolling> {
  // A pool of one per stand-in, as each agent has its own: one shared pool would hand its most
  // recently used connections out and close the rest as idle, so its polls would pay for connects.
  const dbs = Array.from({ length: agents }, () => createDb({ url: stack.env.DATABASE_URL!, maxConnections: 1 }));
  const polls: number[] = [];
  let statements = 0;
  let counting = false;
  const stop = new AbortController();
  // Every stand-in's timers wait on this one signal.
  setMaxListeners(0, stop.signal);
  const count = (n: number) => {
    if (counting) statements += n;
  };
  const every = async (ms: number, step: () => Promise<void>) => {
    await sleep(Math.random() * ms, undefined, { signal: stop.signal }).catch(() => undefined);
    while (!stop.signal.aborted) {
      await step();
      await sleep(ms, undefined, { signal: stop.signal }).catch(() => undefined);
    }
  };
  try {
    await Promise.all(dbs.map((db) => openConnections(db, 1)));
    const host = hostname();
    const loops = dbs.map((db, i) => {
      const id = `idle-${i}`;
      return Promise.all([
        every(config.AGENT_POLL_MS, async () => {
          const s = performance.now();
          await claimBatchWork(db, { workerId: id, kinds: [...FINALIZABLE_BATCH_STATUSES], leaseSeconds: config.LEASE_SECONDS });
          // As the agent's claim loop: the probe, and the claim only when it finds queued work.
          if (await queuedWorkExists(db, [MODEL])) {
            await claimChunk(db, { agentId: id, models: [MODEL], leaseSeconds: config.LEASE_SECONDS, poisonAt: 5 });
            count(1);
          }
          if (counting) polls.push(performance.now() - s);
          count(2);
        }),
        every(config.LEASE_SECONDS * 1000, async () => {
          await registerAgent(db, { id, hostname: host, models: [MODEL] });
          count(1);
        }),
        every(config.LEASE_SECONDS * 500, async () => {
          await rescueExpiredChunks(db);
          await expireBatches(db);
          await findLeftoverSegments(db, LEFTOVER_SWEEP);
          await forgetDepartedAgents(db, DEPARTED_AGENT_SECONDS);
          count(4);
        }),
      ]);
    });
    // One poll interval for every stand-in to have started, then the measured window.
    await sleep(config.AGENT_POLL_MS * 2);
    counting = true;
    const x0 = await committed(stack.db);
    const cpu0 = treeCpuSeconds(stack.pgPid());
    const runner0 = process.cpuUsage();
    const t0 = performance.now();
    await sleep(seconds * 1000);
    counting = false;
    const wall = (performance.now() - t0) / 1000;
    const pgCpu = treeCpuSeconds(stack.pgPid()) - cpu0;
    const runner = process.cpuUsage(runner0);
    const x1 = await committed(stack.db);
    stop.abort();
    await Promise.all(loops);
    const result: IdlePolling = {
      agents,
      seconds: round(wall, 1),
      statements,
      statements_per_s: round(statements / wall, 0),
      statements_per_s_per_agent: round(statements / wall / agents, 3),
      pg_xact_per_s: round((x1 - x0) / wall, 0),
      pg_cpu_cores: round(pgCpu / wall, 3),
      runner_cpu_cores: round((runner.user + runner.system) / 1e6 / wall, 2),
      poll_latency_ms: latency(polls),
    };
    ctx.log(`${agents} idle agents: ${result.statements_per_s} statements/s, postgres ${result.pg_cpu_cores} cores, poll p99 ${result.poll_latency_ms.p99} ms`);
    return result;
  } finally {
    stop.abort();
    await Promise.all(dbs.map((db) => db.destroy()));
  }
}

/** One real agent process on an empty queue: the transactions it commits per second (the stand-ins stopped). */
async function realIdleAgent(ctx: BenchContext, stack: BenchStack, seconds: number): Promise<{ seconds: number; statements_per_s: number; baseline_per_s: number }> {
  // What the server commits with no agent at all (the runner idle, autovacuum), to subtract.
  const b0 = await committed(stack.db);
  const tb = performance.now();
  await sleep(Math.min(10, seconds) * 1000);
  const baseline = ((await committed(stack.db)) - b0 - 1) / ((performance.now() - tb) / 1000);
  await stack.startAgent("agent");
  // Past its start-up and first housekeeping pass.
  await sleep(3000);
  const x0 = await committed(stack.db);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const wall = (performance.now() - t0) / 1000;
  const rate = ((await committed(stack.db)) - x0 - 1) / wall - baseline;
  ctx.log(`one real idle agent: ${rate.toFixed(2)} statements/s (baseline ${baseline.toFixed(2)}/s)`);
  return { seconds: round(wall, 1), statements_per_s: round(rate, 2), baseline_per_s: round(baseline, 2) };
}

/** Transactions committed in the current database so far (each autocommit statement is one). */
async function committed(db: Db): Promise<number> {
  // Autocommit: every statement reads the statistics afresh (no snapshot held between them).
  const { rows } = await sql<{ n: string }>`SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()`.execute(db);
  return Number(rows[0]?.n ?? 0);
}

/** Opens the pool's `n` connections before the clock starts, so no claim pays for a connect. */
async function openConnections(db: Db, n: number): Promise<void> {
  await Promise.all(Array.from({ length: n }, () => sql`SELECT pg_sleep(0.2)`.execute(db)));
}

async function emptyQueue(db: Db): Promise<void> {
  await sql`TRUNCATE batch_events, chunks, batches, files, agents CASCADE`.execute(db);
  await sql`VACUUM ANALYZE`.execute(db);
}

/** One in-progress batch of `chunks` queued chunks, as validation leaves it. */
async function seedQueue(db: Db, chunks: number): Promise<void> {
  const fileId = newId("file-");
  const batchId = newId("batch_");
  await db.transaction().execute(async (tx) => {
    await tx.insertInto("files").values({ id: fileId, tenant: "default", purpose: "batch", filename: "input.jsonl", bytes: chunks * 100, status: "processed", s3_key: `inputs/default/${fileId}.jsonl` }).execute();
    const batch = await tx
      .insertInto("batches")
      .values({
        id: batchId,
        tenant: "default",
        input_file_id: fileId,
        status: "in_progress",
        endpoint: "/v1/chat/completions",
        completion_window: "24h",
        model: MODEL,
        total_requests: chunks,
        in_progress_at: new Date(),
        metadata: JSON.stringify(null),
        errors: JSON.stringify(null),
        stitch_state: JSON.stringify(null),
        expires_at: new Date(Date.now() + 24 * 3600 * 1000),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    const index = Array.from({ length: chunks }, (_, idx) => ({ idx, requestStart: idx, requestCount: 1, startLine: idx + 1, startOffset: idx * 100, endOffset: idx * 100 + 100 }));
    await enqueueChunks(tx, batch, MODEL, index);
  });
  await sql`VACUUM ANALYZE`.execute(db);
}

interface Latency {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

function latency(ms: number[]): Latency {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => round(s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0, 2);
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: round(s.at(-1) ?? 0, 2), mean: round(s.reduce((a, b) => a + b, 0) / (s.length || 1), 2) };
}

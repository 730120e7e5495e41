import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { createAgent } from "@barge/agent";
import { startApi } from "@barge/api";
import { createDb, createLogger, createS3Client, loadConfig, migrate, s3Settings, startupChecks, waitForDependencies, type Config } from "@barge/core";
import { createEngineSim, type EngineSimOptions } from "@barge/engine-sim";
import { leaveSignalsToCaller, startEmbeddedPostgres } from "./postgres.js";
import { s3CredentialsFile } from "./s3-credentials.js";
import { startSupervisedS3, type SupervisedS3 } from "./s3-supervisor.js";
import { describeError, startPart } from "./start-failure.js";

export interface StackOptions {
  env?: Record<string, string | undefined>;
  /** Directory for embedded Postgres and S3 data. */
  dataDir?: string;
  /** Listen on a free port instead of API_PORT (the demo, so it never clashes with `pnpm start`). */
  anyPort?: boolean;
  /** The embedded PostgreSQL fsyncs (`pnpm start`, which keeps its data); off for the demo and tests. */
  durable?: boolean;
  sim?: EngineSimOptions;
}

/** What a running stack offers its user, and how to stop it. */
export interface Stack {
  config: Config;
  apiUrl: string;
  s3Endpoint: string;
  engineUrl: string;
  /** Which parts were started here rather than taken from env. */
  embedded: { postgres: boolean; s3: boolean; engine: boolean };
  /** The embedded S3's credentials file (undefined if S3 is external). */
  s3CredentialsFile: string | undefined;
  /** The PID of the embedded S3's child process now serving (undefined if S3 is external or restarting). */
  s3Pid(): number | undefined;
  stop(): Promise<void>;
}

/**
 * Starts Barge on embedded defaults: PostgreSQL, s3rver and engine-sim are started only for the
 * settings env leaves empty (DATABASE_URL, S3_ENDPOINT, VLLM_URL); then the API and one agent.
 * s3rver runs in a supervised child process, so a crash in it never takes the API or agent down,
 * behind a proxy that serves only requests signed with the data dir's own generated credentials.
 * The caller owns SIGINT/SIGTERM and calls `stop()`, which stops the parts in order.
 */
export async function startStack(o: StackOptions = {}): Promise<Stack> {
  const env = { ...(o.env ?? process.env) };
  const base = loadConfig(env);
  const dataDir = resolve(o.dataDir ?? base.BARGE_DATA_DIR);
  mkdirSync(dataDir, { recursive: true });
  const log = createLogger("barge", base.LOG_LEVEL);
  const stops: Stop[] = [];
  const embedded = { postgres: false, s3: false, engine: false };
  let embeddedS3: SupervisedS3 | undefined;
  let credentialsFile: string | undefined;

  try {
    if (!env.DATABASE_URL) {
      leaveSignalsToCaller();
      const pg = await startEmbeddedPostgres(join(dataDir, "pg"), { durable: o.durable ?? false });
      stops.push({ part: "embedded PostgreSQL", stop: () => pg.stop() });
      env.DATABASE_URL = pg.url;
      embedded.postgres = true;
    }
    if (!env.S3_ENDPOINT) {
      const s3Dir = join(dataDir, "s3");
      const s3 = await startPart("embedded S3 (s3rver)", s3Dir, () => startSupervisedS3(s3Dir, [base.S3_BUCKET], { log: log.child({ svc: "s3" }) }));
      embeddedS3 = s3;
      credentialsFile = s3CredentialsFile(s3Dir);
      stops.push({ part: "embedded S3", stop: () => s3.stop() });
      env.S3_ENDPOINT = s3.endpoint;
      env.S3_ACCESS_KEY_ID = s3.accessKeyId;
      env.S3_SECRET_ACCESS_KEY = s3.secretAccessKey;
      embedded.s3 = true;
    }
    if (!env.VLLM_URL) {
      const sim = await startPart("engine-sim", undefined, () => createEngineSim(o.sim ?? {}));
      stops.push({ part: "engine-sim", stop: () => sim.close() });
      env.VLLM_URL = sim.url;
      embedded.engine = true;
    }
    // Serverless mode out of the box: `aws s3 cp x.jsonl s3://barge/inbox/` runs with no event source set up.
    if (!env.TRIGGER_POLL_SECONDS) env.TRIGGER_POLL_SECONDS = "2";
    const config = loadConfig(env);

    const db = createDb({ url: config.DATABASE_URL!, schema: config.DATABASE_SCHEMA });
    stops.push({ part: "database pool", stop: () => db.destroy() });
    const s3 = createS3Client(s3Settings(config));
    stops.push({ part: "S3 client", stop: async () => s3.destroy() });
    const deps = { db, s3, bucket: config.S3_BUCKET, config };
    // An external Postgres or S3 gets the API's own start-up checks: an outage is waited for, a
    // wrong setting (or a missing bucket without S3_CREATE_BUCKET=true) stops here, named.
    await waitForDependencies({ checks: startupChecks(deps), log });
    await migrate(db, config.DATABASE_SCHEMA);

    const port = o.anyPort ? 0 : config.API_PORT;
    const api = await startPart(`API on ${config.API_HOST}:${port}`, undefined, () => startApi({ ...deps, log: log.child({ svc: "api" }), host: config.API_HOST, port }));
    stops.push({ part: "API", stop: () => api.close() });
    const agent = createAgent({ ...deps, log: log.child({ svc: "agent" }), engineUrl: config.VLLM_URL! });
    await agent.start();
    stops.push({ part: "agent", stop: () => agent.stop({ graceful: true }) });

    return {
      config: { ...config, BARGE_API_URL: api.url },
      apiUrl: api.url,
      s3Endpoint: config.S3_ENDPOINT!,
      engineUrl: config.VLLM_URL!,
      embedded,
      s3CredentialsFile: credentialsFile,
      s3Pid: () => embeddedS3?.pid(),
      stop: () => stopAll(stops, log),
    };
  } catch (err) {
    await stopAll(stops, log);
    throw err;
  }
}

interface Stop {
  part: string;
  stop(): Promise<unknown>;
}

/** Stops every started part, last first; a part that fails to stop is reported, not hidden. */
async function stopAll(stops: Stop[], log: ReturnType<typeof createLogger>): Promise<void> {
  for (const s of stops.splice(0).reverse()) {
    await s.stop().catch((err: unknown) => log.error({ part: s.part, err: describeError(err) }, `${s.part} did not stop cleanly`));
  }
}

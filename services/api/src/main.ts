import {
  createDb,
  createLogger,
  createS3Client,
  holdYoungGeneration,
  limitHeapGrowth,
  loadConfig,
  migrate,
  oneLine,
  reclaimStreamedBuffers,
  s3Settings,
  startupChecks,
  StartupError,
  waitForDependencies,
} from "@barge/core";
import { listenApi, startApi } from "./server.js";
import { startingApp } from "./starting.js";

/**
 * Runs the API on its own, configured from env, until SIGTERM or SIGINT. It listens at once and
 * answers 503 naming the reason while Postgres or S3 is out of reach (retried with backoff); a
 * setting no wait can fix (an open bind, wrong credentials, a missing bucket) exits 1 with one line.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  limitHeapGrowth(config.HEAP_GROWING_PERCENT);
  holdYoungGeneration();
  reclaimStreamedBuffers(config.RECLAIM_BUFFERS_MIB);
  const log = createLogger("barge-api", config.LOG_LEVEL);
  if (!config.DATABASE_URL) throw new StartupError("DATABASE_URL is required to run the API on its own");
  let waitingFor = "checking Postgres and S3";
  const listener = await listenApi({ host: config.API_HOST, port: config.API_PORT, config, fetch: startingApp(() => waitingFor).fetch });
  log.info({ url: listener.url }, "barge api listening; checking Postgres and S3");
  const db = createDb({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA });
  const s3 = createS3Client(s3Settings(config));

  const stopWaiting = new AbortController();
  let close = async () => {
    stopWaiting.abort();
    await listener.close();
  };
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    await close();
    await db.destroy();
    s3.destroy();
    process.exit(0);
  };
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  process.once("SIGINT", () => void shutdown("SIGINT"));

  const deps = { db, s3, bucket: config.S3_BUCKET, config };
  const ready = await waitForDependencies({ checks: startupChecks(deps), log, signal: stopWaiting.signal, onWaiting: (reason) => (waitingFor = reason) });
  if (!ready) return;
  await migrate(db, config.DATABASE_SCHEMA);
  const api = await startApi({ ...deps, log, host: config.API_HOST, port: config.API_PORT, listener });
  close = () => api.close();
  log.info({ url: api.url }, "barge api ready");
}

main().catch((err: unknown) => {
  // One line, no stack: start-up failures are settings or outages, and the message names which.
  console.error(`barge-api: cannot start: ${oneLine(err)}`);
  process.exit(1);
});

import { createDb, createLogger, createS3Client, holdYoungGeneration, limitHeapGrowth, loadConfig, migrate, reclaimStreamedBuffers, s3Settings } from "@barge/core";
import { startApi } from "./server.js";

/** Runs the API on its own, configured from env, until SIGTERM or SIGINT. */
async function main(): Promise<void> {
  const config = loadConfig();
  limitHeapGrowth(config.HEAP_GROWING_PERCENT);
  holdYoungGeneration();
  reclaimStreamedBuffers(config.RECLAIM_BUFFERS_MIB);
  const log = createLogger("barge-api", config.LOG_LEVEL);
  if (!config.DATABASE_URL) throw new Error("DATABASE_URL is required to run the API on its own");
  const db = createDb({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA });
  await migrate(db, config.DATABASE_SCHEMA);
  const s3 = createS3Client(s3Settings(config));
  const api = await startApi({ db, s3, bucket: config.S3_BUCKET, config, log, host: config.API_HOST, port: config.API_PORT });
  log.info({ url: api.url }, "barge api listening");

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    await api.close();
    await db.destroy();
    s3.destroy();
    process.exit(0);
  };
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  process.once("SIGINT", () => void shutdown("SIGINT"));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

import { createDb, createLogger, createS3Client, loadConfig, migrate, s3Settings } from "@barge/core";
import { createAgent } from "./agent.js";

// Standalone agent process: one per GPU node, beside that node's vLLM server.
const config = loadConfig();
const log = createLogger("agent", config.LOG_LEVEL);
if (!config.DATABASE_URL) throw new Error("DATABASE_URL is required to run an agent");
if (!config.VLLM_URL) throw new Error("VLLM_URL is required to run an agent");

const db = createDb({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA });
await migrate(db, config.DATABASE_SCHEMA);
const s3 = createS3Client(s3Settings(config));
const agent = createAgent({ db, s3, bucket: config.S3_BUCKET, config, log, engineUrl: config.VLLM_URL });

let signalled = false;
const onSignal = (signal: NodeJS.Signals) => {
  if (signalled) {
    log.warn({ signal }, "second signal: exiting at once");
    process.exit(1);
  }
  signalled = true;
  log.info({ signal, graceMs: config.AGENT_SHUTDOWN_GRACE_MS }, "stopping: finishing in-flight requests and releasing the chunk");
  agent
    .stop({ graceful: true })
    .then(async () => {
      s3.destroy();
      await db.destroy();
      process.exit(0);
    })
    .catch((err: unknown) => {
      log.error({ err }, "graceful stop failed");
      process.exit(1);
    });
};
process.on("SIGTERM", onSignal);
process.on("SIGINT", onSignal);

await agent.start();

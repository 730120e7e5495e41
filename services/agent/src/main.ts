import {
  createDb,
  createLogger,
  createS3Client,
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
import { createAgent } from "./agent.js";
import { createEngineProcess } from "./engine/engine-process.js";

/**
 * The standalone agent process: one per GPU node, beside that node's vLLM server. Postgres or S3
 * out of reach is waited for with backoff, and so is an engine still loading its model (its
 * /readyz on AGENT_METRICS_PORT says which meanwhile); a setting no wait can fix exits 1 with one line.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  limitHeapGrowth(config.HEAP_GROWING_PERCENT);
  reclaimStreamedBuffers(config.RECLAIM_BUFFERS_MIB);
  const log = createLogger("agent", config.LOG_LEVEL);
  if (!config.DATABASE_URL) throw new StartupError("DATABASE_URL is required to run an agent");
  if (!config.VLLM_URL && !config.ENGINE_COMMAND) throw new StartupError("VLLM_URL is required to run an agent (or ENGINE_COMMAND, to start the engine itself)");
  // With ENGINE_COMMAND the agent runs its engine itself, on loopback at ENGINE_PORT.
  const engineProcess = config.ENGINE_COMMAND ? createEngineProcess({ command: config.ENGINE_COMMAND, port: config.ENGINE_PORT, log }) : undefined;
  const engineUrl = engineProcess ? `http://127.0.0.1:${config.ENGINE_PORT}` : config.VLLM_URL!;
  const db = createDb({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA });
  const s3 = createS3Client(s3Settings(config));

  const agent = createAgent({
    db,
    s3,
    bucket: config.S3_BUCKET,
    config,
    log,
    engineUrl,
    ...(engineProcess ? { engineProcess } : {}),
    preflight: async ({ signal, onWaiting }) => {
      if (!(await waitForDependencies({ checks: startupChecks({ db, s3, bucket: config.S3_BUCKET, config }), log, signal, onWaiting }))) return false;
      await migrate(db, config.DATABASE_SCHEMA);
      return true;
    },
  });
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
}

main().catch((err: unknown) => {
  // One line, no stack: start-up failures are settings or outages, and the message names which.
  console.error(`barge-agent: cannot start: ${oneLine(err)}`);
  process.exit(1);
});

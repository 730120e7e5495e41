import { createEngineSim } from "./server.js";
import { USAGE, parseConfig } from "./config.js";

// Standalone entry: `tsx services/engine-sim/src/main.ts serve <model> --port 8000`, usable as a
// drop-in ENGINE_COMMAND in place of `vllm serve`.

let config;
try {
  config = parseConfig(process.argv.slice(2), process.env);
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
}
if (config === null) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const sim = await createEngineSim(config);
process.stdout.write(`engine-sim listening on ${sim.url} models=${config.models.join(",")} (simulated)\n`);

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  void sim.close().then(() => process.exit(0));
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

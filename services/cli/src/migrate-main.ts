import { loadConfig } from "@barge/core";
import { migrateDatabase } from "./commands/migrate.js";
import { UsageError } from "./usage-error.js";

// `barge migrate` on its own, for the production image (`node dist/migrate.mjs`, the Kubernetes
// Job): the full CLI brings the embedded stack, which a deployment never runs.
migrateDatabase(loadConfig(), (line) => console.log(line)).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);

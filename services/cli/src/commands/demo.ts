import { rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { BargeClient } from "../client.js";
import { startStack } from "@barge/devstack";
import { submit } from "./submit.js";

/**
 * `pnpm demo`: the whole pipeline once on the embedded stack — presigned upload of
 * examples/chat.jsonl, batch, live progress, download — then stops everything it started.
 * Resolves with the exit code.
 */
export async function demo(opts: { file?: string; dataDir?: string } = {}): Promise<number> {
  const dataDir = resolve(opts.dataDir ?? join(process.env.BARGE_DATA_DIR ?? ".barge", "demo"));
  rmSync(dataDir, { recursive: true, force: true });
  const out = join(dataDir, "output.jsonl");
  // Realistic-looking GPU pacing so the progress bar has something to show (a few seconds).
  const stack = await startStack({
    dataDir,
    anyPort: true,
    env: { LOG_LEVEL: "warn", SEGMENT_MAX_MS: "500", ...process.env },
    sim: { maxNumSeqs: 4, prefillTokensPerSec: 4000, decodeTokensPerSec: 60 },
  });
  // Ctrl-C stops what the demo started, in order, instead of leaving PostgreSQL behind.
  const onSignal = () => {
    console.log("\nstopping…");
    void stack.stop().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    console.log(`embedded stack up: API ${stack.apiUrl}, S3 ${stack.s3Endpoint}, engine-sim ${stack.engineUrl}`);
    const client = new BargeClient(stack.apiUrl, stack.config.BARGE_API_KEY);
    const batch = await submit(client, {
      file: opts.file ?? "examples/chat.jsonl",
      endpoint: "/v1/chat/completions",
      metadata: { source: "barge demo" },
      wait: true,
      out,
      pollMs: 250,
    });
    return batch.status === "completed" ? 0 : 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await stack.stop();
    console.log("stopped the embedded stack");
  }
}

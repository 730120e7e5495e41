import { afterEach, describe, expect, it } from "vitest";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { batchProgress } from "@barge/core";
import { createAgent } from "@barge/agent";
import { createEngineProcess, engineArgv } from "@barge/agent/testing";
import { createTestContext, testLog, type TestContext } from "../support/context.js";
import { chatLine, seedBatch, waitFor } from "../support/seed.js";

// ENGINE_COMMAND: the agent starts engine-sim itself, loads the model waited for longest, swaps
// to another model once its own has no work, and restarts an engine that dies.

const simMain = fileURLToPath(new URL("../../services/engine-sim/src/main.ts", import.meta.url));

/** A port free right now, for the engine to listen on. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("agent: ENGINE_COMMAND", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it("splits the template into argv without a shell", () => {
    expect(engineArgv(" vllm  serve {model} --port {port} --served-model-name {model}", "m/x", 8001)).toEqual([
      "vllm",
      "serve",
      "m/x",
      "--port",
      "8001",
      "--served-model-name",
      "m/x",
    ]);
  });

  it("loads the oldest waiting model, swaps when idle, restarts a dead engine, and stops it by PID", { timeout: 120_000 }, async () => {
    const ctx: TestContext = await createTestContext({ CHUNK_SIZE: "5", AGENT_POLL_MS: "50", API_POLL_MS: "50", AGENT_CONCURRENCY: "4", LEASE_SECONDS: "4", ENGINE_SWAP_AFTER_SECONDS: "1" });
    cleanups.push(() => ctx.close());
    const port = await freePort();
    // 8 tokens at 80 tokens/s: 100 ms a request, so an engine can be killed mid-chunk.
    const command = `${process.execPath} --import tsx ${simMain} serve {model} --port {port} --decode-tps 80`;
    const engineProcess = createEngineProcess({ command, port, log: testLog, restartDelayMs: 100 });
    cleanups.push(() => engineProcess.stop());

    const first = await seedBatch(ctx, Array.from({ length: 10 }, (_, i) => chatLine(`one${i}`, `m1 ${i}`, { model: "sim-m1", max_tokens: 8 })));
    const second = await seedBatch(ctx, Array.from({ length: 40 }, (_, i) => chatLine(`two${i}`, `m2 ${i}`, { model: "sim-m2", max_tokens: 8 })));
    const agent = createAgent({ db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, config: ctx.config, log: testLog, engineUrl: `http://127.0.0.1:${port}`, engineProcess, agentId: "cmd-agent" });
    cleanups.push(() => agent.stop({ graceful: false }));
    await agent.start();
    expect(engineProcess.model).toBe("sim-m1");

    const status = async (batchId: string) => (await ctx.db.selectFrom("batches").select("status").where("id", "=", batchId).executeTakeFirstOrThrow()).status;
    await waitFor("the first batch to complete", async () => (await status(first.batchId)) === "completed", 60_000);

    // The swap to sim-m2, then a kill of that engine while it runs a chunk.
    const swappedPid = await waitFor("the engine to run sim-m2", async () => {
      const leased = await ctx.db.selectFrom("chunks").select("idx").where("batch_id", "=", second.batchId).where("status", "=", "leased").executeTakeFirst();
      return engineProcess.model === "sim-m2" && leased !== undefined ? engineProcess.pid : undefined;
    });
    process.kill(swappedPid, "SIGKILL");
    const restartedPid = await waitFor("the engine to be restarted", async () => {
      const pid = engineProcess.pid;
      return pid !== undefined && pid !== swappedPid ? pid : undefined;
    });
    await waitFor("the second batch to complete", async () => (await status(second.batchId)) === "completed", 60_000);

    expect(engineProcess.model).toBe("sim-m2");
    const progress = await batchProgress(ctx.db, [first.batchId, second.batchId]);
    expect([progress.get(first.batchId)?.completed, progress.get(first.batchId)?.failed]).toEqual([10, 0]);
    // The kill released the chunk with what it had committed; nothing became an error line.
    expect([progress.get(second.batchId)?.completed, progress.get(second.batchId)?.failed]).toEqual([40, 0]);

    await agent.stop({ graceful: true });
    expect(alive(restartedPid)).toBe(false);
    expect(engineProcess.pid).toBeUndefined();
  });
});

import { describe, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { batchProgress } from "@barge/core";
import { createEngineProcess, engineArgv } from "@barge/agent/testing";
import { freePort, processAlive as alive } from "@barge/devstack";
import { testLog, type TestContext } from "../support/context.js";
import { chatLine, seedBatch, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

// ENGINE_COMMAND: the agent starts engine-sim itself, loads the model waited for longest, swaps
// to another model once its own has no work, and restarts an engine that dies.

const simMain = fileURLToPath(new URL("../../services/engine-sim/src/main.ts", import.meta.url));


describe("agent: ENGINE_COMMAND", () => {
  const suite = suiteResources();

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
    const ctx: TestContext = await suite.context({ CHUNK_SIZE: "5", AGENT_POLL_MS: "50", API_POLL_MS: "50", AGENT_CONCURRENCY: "4", LEASE_SECONDS: "4", ENGINE_SWAP_AFTER_SECONDS: "1" });
    const port = await freePort();
    // 8 tokens at 80 tokens/s: 100 ms a request, so an engine can be killed mid-chunk.
    const command = `${process.execPath} --import tsx ${simMain} serve {model} --port {port} --decode-tps 80`;
    const engineProcess = createEngineProcess({ command, port, log: testLog, restartDelayMs: 100 });
    suite.cleanup(() => engineProcess.stop());

    const first = await seedBatch(ctx, Array.from({ length: 10 }, (_, i) => chatLine(`one${i}`, `m1 ${i}`, { model: "sim-m1", max_tokens: 8 })));
    const second = await seedBatch(ctx, Array.from({ length: 40 }, (_, i) => chatLine(`two${i}`, `m2 ${i}`, { model: "sim-m2", max_tokens: 8 })));
    const agent = suite.agent(ctx, { engineUrl: `http://127.0.0.1:${port}`, engineProcess, agentId: "cmd-agent" });
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

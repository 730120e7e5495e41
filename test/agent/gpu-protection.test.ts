import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { faultSuite } from "../support/fault-suite.js";
import { eventually } from "../support/processes.js";
import { batchRow, chunkRows } from "../support/results.js";
import { chatLine, seedBatch } from "../support/seed.js";

const TOTAL = 12;
/** Each wait names itself when it times out, well inside the test's own limit. */
const STEP_MS = 30_000;

/** One nvidia-smi CSV line (`--format=csv,noheader,nounits`), as an H100 prints it, at `tempC`. */
const h100 = (tempC: number) => `0, NVIDIA H100 80GB HBM3, 93, 71234, 81559, ${tempC}, 402.17\n`;

// This machine has no GPU. The agent process gets a STAND-IN `nvidia-smi` first on its PATH: a
// shell script printing recorded CSV from a file this test rewrites to heat and cool the GPU.
/** A stand-in nvidia-smi printing `gpus.csv` (written at `tempC` now), and a PATH with it first. */
function standInIn(dir: string, tempC: number): { csv: string; PATH: string } {
  const csv = join(dir, "gpus.csv");
  writeFileSync(csv, h100(tempC));
  writeFileSync(join(dir, "nvidia-smi"), `#!/bin/sh\n# Stand-in for nvidia-smi: prints the recorded CSV the test wrote.\ncat '${csv}'\n`);
  chmodSync(join(dir, "nvidia-smi"), 0o755);
  return { csv, PATH: `${dir}:${process.env.PATH}` };
}

describe("agent: GPU protection, with a stand-in nvidia-smi (no GPU here)", () => {
  const suite = faultSuite();
  const { children } = suite;
  const standIn = (tempC: number) => standInIn(suite.tempDir("stand-in-nvidia-smi-"), tempC);

  it("stand-in nvidia-smi: a GPU over 85 °C pauses claims (queued chunks stay queued), hysteresis holds at 82 °C, 70 °C resumes and the batch completes", { timeout: 120_000 }, async () => {
    const ctx = await suite.context({ CHUNK_SIZE: "4", LEASE_SECONDS: "2", AGENT_POLL_MS: "50", GPU_MAX_TEMP_C: "85", GPU_RESUME_MARGIN: "5" });
    const sim = await suite.sim({ models: ["barge-sim-1"] });
    const { csv, PATH } = standIn(64);
    const agentRow = () => ctx.db.selectFrom("agents").selectAll().where("id", "=", "gpu-agent").executeTakeFirst();
    const agent = children.agent({ ...ctx.env, VLLM_URL: sim.url, PATH }, "gpu-agent");

    const cool = await eventually("the agent to record its GPU", async () => (await agentRow())?.gpus ?? undefined, STEP_MS);
    expect(cool).toEqual([{ index: 0, name: "NVIDIA H100 80GB HBM3", utilization_percent: 93, memory_used_mib: 71234, memory_total_mib: 81559, temperature_c: 64, power_w: 402.17 }]);
    expect((await agentRow())!.claims_paused_reason).toBeNull();

    writeFileSync(csv, h100(91));
    await eventually("claims to pause", async () => (await agentRow())?.claims_paused_reason === "gpu 0 at 91 °C (limit 85)", STEP_MS);
    const { batchId } = await seedBatch(ctx, Array.from({ length: TOTAL }, (_, i) => chatLine(`g-${i}`, `gpu ${i}`)));
    const queuedOnly = async () => (await chunkRows(ctx, batchId)).map((c) => [c.idx, c.status, c.leased_by, c.attempts]);
    const allQueued = [[0, "queued", null, 0], [1, "queued", null, 0], [2, "queued", null, 0]];

    // Between the limit and the resume threshold (85 - 5): still paused, and the reason follows the reading.
    writeFileSync(csv, h100(82));
    await eventually("the reason to follow the cooling GPU", async () => (await agentRow())?.claims_paused_reason === "gpu 0 at 82 °C (limit 85)", STEP_MS);
    // Two heartbeats later the claim loop has polled many times (every 50 ms): nothing was claimed.
    const seen = (await agentRow())!.last_seen_at;
    await eventually("two more heartbeats", async () => (await agentRow())!.last_seen_at.getTime() >= seen.getTime() + 3500, STEP_MS);
    expect(await queuedOnly()).toEqual(allQueued);
    expect((await batchRow(ctx, batchId)).status).toBe("in_progress");

    writeFileSync(csv, h100(70));
    const done = await eventually("the batch to complete once the GPU cooled", async () => {
      const b = await batchRow(ctx, batchId);
      return b.status === "completed" ? b : undefined;
    }, STEP_MS);
    expect((await agentRow())!.claims_paused_reason).toBeNull();
    expect((await chunkRows(ctx, batchId)).map((c) => [c.idx, c.status, c.committed])).toEqual([[0, "done", 4], [1, "done", 4], [2, "done", 4]]);
    expect(done.completed_at).not.toBeNull();
    // The heartbeat also records the engine's KV-cache gauge and the agent's in-flight bound, idle again now.
    const idle = await eventually("an idle heartbeat", async () => {
      const a = await agentRow();
      return a?.in_flight === 0 && a.kv_cache_usage === 0 ? a : undefined;
    }, STEP_MS);
    expect(idle.concurrency_limit).toBeGreaterThanOrEqual(1);
    expect(agent.logs().filter((l) => String(l.msg).startsWith("GPU")).map((l) => [l.msg, l.reason ?? l.was])).toEqual([
      ["GPU over its limit: claiming no new chunks", "gpu 0 at 91 °C (limit 85)"],
      ["GPUs back under their limits: claiming again", "gpu 0 at 82 °C (limit 85)"],
    ]);
  });

  it("stand-in nvidia-smi: a GPU that gets hot mid-chunk lets the running chunk finish, and the next stays queued until it cools", { timeout: 120_000 }, async () => {
    const ctx = await suite.context({ CHUNK_SIZE: "4", LEASE_SECONDS: "2", AGENT_POLL_MS: "50", AGENT_CONCURRENCY: "1", AGENT_MAX_CONCURRENCY: "1", SEGMENT_MAX_LINES: "1" });
    // Long prompts at 100 prompt tokens/s, one request at a time: the first chunk runs for several heartbeats.
    const sim = await suite.sim({ models: ["barge-sim-1"], prefillTokensPerSec: 100 });
    const { csv, PATH } = standIn(60);
    const { batchId } = await seedBatch(ctx, Array.from({ length: 5 }, (_, i) => chatLine(`r-${i}`, `${"word ".repeat(200)}${i}`)));
    const agentRow = () => ctx.db.selectFrom("agents").selectAll().where("id", "=", "hot-mid-run").executeTakeFirst();
    children.agent({ ...ctx.env, VLLM_URL: sim.url, PATH }, "hot-mid-run");

    await eventually("the first chunk to be leased", async () => (await chunkRows(ctx, batchId))[0]!.status === "leased", STEP_MS);
    writeFileSync(csv, h100(90));
    await eventually("claims to pause", async () => (await agentRow())?.claims_paused_reason === "gpu 0 at 90 °C (limit 85)", STEP_MS);
    const hot = await chunkRows(ctx, batchId);
    // Paused while the first chunk still ran: had it finished first, this would prove nothing.
    expect(hot.map((c) => [c.idx, c.status])).toEqual([[0, "leased"], [1, "queued"]]);

    await eventually("the running chunk to finish while hot", async () => (await chunkRows(ctx, batchId))[0]!.status === "done", STEP_MS);
    expect((await chunkRows(ctx, batchId)).map((c) => [c.idx, c.status, c.committed, c.attempts])).toEqual([[0, "done", 4, 1], [1, "queued", 0, 0]]);
    expect((await agentRow())!.claims_paused_reason).toBe("gpu 0 at 90 °C (limit 85)");

    writeFileSync(csv, h100(60));
    await eventually("the batch to complete once cooled", async () => (await batchRow(ctx, batchId)).status === "completed", STEP_MS);
    expect((await chunkRows(ctx, batchId)).map((c) => [c.idx, c.status, c.committed])).toEqual([[0, "done", 4], [1, "done", 1]]);
  });
});

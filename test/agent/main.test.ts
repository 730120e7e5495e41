import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { keys } from "@barge/core";
import { chatLine, readObject, seedBatch, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

const main = fileURLToPath(new URL("../../services/agent/src/main.ts", import.meta.url));

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });
}

describe("agent: standalone process", () => {
  const suite = suiteResources();

  it("runs a batch, then exits 0 on SIGTERM after releasing its chunk", async () => {
    const ctx = await suite.context({ CHUNK_SIZE: "4", SEGMENT_MAX_LINES: "2", LEASE_SECONDS: "2", AGENT_POLL_MS: "50", API_POLL_MS: "50", AGENT_CONCURRENCY: "2" });
    const sim = await suite.sim({ models: ["barge-sim-1"], decodeTokensPerSec: 100 });
    const child = spawn(process.execPath, ["--import", "tsx", main], {
      env: { ...process.env, ...ctx.env, VLLM_URL: sim.url, AGENT_ID: "process-agent" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    suite.cleanup(async () => {
      if (child.exitCode === null) child.kill("SIGKILL");
      await exited(child);
    });

    const { batchId, tenant } = await seedBatch(ctx, Array.from({ length: 6 }, (_, i) => chatLine(`p${i}`, `process ${i}`)));
    await waitFor("the batch to complete", async () => {
      const b = await ctx.db.selectFrom("batches").select("status").where("id", "=", batchId).executeTakeFirstOrThrow();
      return b.status === "completed";
    });
    const out = (await readObject(ctx, keys.output(tenant, batchId))).split("\n").filter((l) => l !== "");
    expect(out.map((l) => (JSON.parse(l) as { custom_id: string }).custom_id)).toEqual(["p0", "p1", "p2", "p3", "p4", "p5"]);
    const agent = await ctx.db.selectFrom("agents").selectAll().where("id", "=", "process-agent").executeTakeFirstOrThrow();
    expect(agent.models).toEqual(["barge-sim-1"]);

    // A second batch, stopped mid-run: the chunk is released, not left to lapse.
    const second = await seedBatch(ctx, Array.from({ length: 8 }, (_, i) => chatLine(`q${i}`, `stop me ${i}`)));
    await waitFor("the second batch's chunk to be claimed", async () =>
      (await ctx.db.selectFrom("chunks").select("status").where("batch_id", "=", second.batchId).where("status", "=", "leased").execute()).length > 0,
    );
    child.kill("SIGTERM");
    expect(await exited(child), stderr).toBe(0);
    const chunks = await ctx.db.selectFrom("chunks").selectAll().where("batch_id", "=", second.batchId).execute();
    expect(chunks.filter((c) => c.status === "leased")).toEqual([]);
  });

  it("refuses to start without VLLM_URL", async () => {
    const ctx = await suite.context();
    const env: Record<string, string | undefined> = { ...process.env, ...ctx.env };
    delete env.VLLM_URL;
    const child = spawn(process.execPath, ["--import", "tsx", main], { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    expect(await exited(child)).not.toBe(0);
    expect(stderr).toContain("VLLM_URL is required");
  });
});

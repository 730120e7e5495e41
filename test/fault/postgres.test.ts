import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startEmbeddedPostgres } from "@barge/devstack";
import { faultSuite } from "../support/fault-suite.js";
import { eventually } from "../support/processes.js";
import { batchRow, committedCount, readResults, requestIndexOf } from "../support/results.js";
import { chatLine, seedBatch } from "../support/seed.js";

const TOTAL = 60;

describe("fault: Postgres restarted mid-batch", () => {
  const suite = faultSuite();
  const { children } = suite;

  it("agent and API ride out the restart; the batch completes with nothing lost or duplicated", async () => {
    // A server of this test's own, since it gets stopped: never the run's shared one.
    const dir = suite.tempDir("barge-fault-pg-");
    const pg = await startEmbeddedPostgres(join(dir, "pg"));
    suite.cleanup(() => pg.stop());

    const ctx = await suite.context({
      DATABASE_URL: pg.url,
      CHUNK_SIZE: "10",
      SEGMENT_MAX_LINES: "3",
      SEGMENT_MAX_MS: "300",
      LEASE_SECONDS: "3",
      AGENT_POLL_MS: "50",
      API_POLL_MS: "50",
      AGENT_CONCURRENCY: "3",
    });
    const sim = await suite.sim({ models: ["barge-sim-1"], decodeTokensPerSec: 150 });
    const api = await suite.api(ctx);

    const requests = Array.from({ length: TOTAL }, (_, i) => chatLine(`pg-${i}`, `restart the database ${i}`));
    const { batchId } = await seedBatch(ctx, requests);
    const agent = children.agent({ ...ctx.env, VLLM_URL: sim.url }, "steadfast");
    await eventually("a few commits", async () => (await committedCount(ctx, batchId)) >= 6);
    expect((await batchRow(ctx, batchId)).status).toBe("in_progress");

    await pg.stop();
    // While the database is down the API answers 503 to retry in OpenAI's shape, and stays up.
    const during = await fetch(`${api.url}/v1/batches/${batchId}`);
    expect([during.status, during.headers.get("retry-after")]).toEqual([503, "5"]);
    expect(((await during.json()) as { error: { type: string; code: string } }).error).toMatchObject({ type: "server_error", code: "service_unavailable" });
    await eventually("the agent to notice the outage", async () => agent.logs().some((l) => (l.level as number) >= 40));
    await pg.start();

    const batch = await eventually("the batch to complete", async () => {
      const b = await batchRow(ctx, batchId);
      return b.status === "completed" ? b : undefined;
    });
    expect(agent.process.exitCode).toBeNull();
    const after = await fetch(`${api.url}/v1/batches/${batchId}`);
    expect(after.status).toBe(200);
    expect(((await after.json()) as { status: string; request_counts: unknown }).request_counts).toEqual({ total: TOTAL, completed: TOTAL, failed: 0 });

    const { output, errors } = await readResults(ctx, batch);
    expect(errors).toEqual([]);
    expect(output.map((l) => l.custom_id)).toEqual(requests.map((r) => r.custom_id));
    expect(output.map((l) => requestIndexOf(l.response?.request_id))).toEqual(requests.map((_, i) => i));
  });
});

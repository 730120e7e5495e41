import { describe, expect, it } from "vitest";
import { faultSuite } from "../support/fault-suite.js";
import { eventually } from "../support/processes.js";
import { batchRow, committedCount, readResults, requestIndexOf } from "../support/results.js";
import { chatLine, seedBatch } from "../support/seed.js";

const TOTAL = 60;
const OUTAGE_MS = 10_000;

describe("fault: S3 unreachable for 10 s mid-batch", () => {
  const suite = faultSuite();
  const { children } = suite;

  it("agent and API wait it out; the batch completes with nothing lost or duplicated", async () => {
    const ctx = await suite.context({ CHUNK_SIZE: "10", SEGMENT_MAX_LINES: "3", SEGMENT_MAX_MS: "300", LEASE_SECONDS: "3", AGENT_POLL_MS: "50", API_POLL_MS: "50", AGENT_CONCURRENCY: "3" });
    // Agent and API reach S3 only through the proxy; the test's own client goes direct.
    const { proxy, s3: viaProxy } = await suite.s3Proxy(ctx);
    const sim = await suite.sim({ models: ["barge-sim-1"], decodeTokensPerSec: 150 });
    const api = await suite.api(ctx, viaProxy);

    const requests = Array.from({ length: TOTAL }, (_, i) => chatLine(`s3-${i}`, `bucket gone ${i}`));
    const { batchId, fileId } = await seedBatch(ctx, requests);
    const agent = children.agent({ ...ctx.env, S3_ENDPOINT: proxy.url, VLLM_URL: sim.url }, "patient");
    await eventually("a few commits", async () => (await committedCount(ctx, batchId)) >= 6);
    expect((await batchRow(ctx, batchId)).status).toBe("in_progress");

    await proxy.down();
    const outageEnds = Date.now() + OUTAGE_MS;
    // The API answers a read it cannot serve with a 503 to retry in OpenAI's shape, and stays up.
    const during = await fetch(`${api.url}/v1/files/${fileId}/content`);
    expect([during.status, during.headers.get("retry-after")]).toEqual([503, "5"]);
    expect(((await during.json()) as { error: { code: string } }).error.code).toBe("service_unavailable");
    await eventually("the agent to hit the outage", async () => agent.logs().some((l) => l.msg === "segment commit failed; retrying"));
    const stalled = await committedCount(ctx, batchId);
    expect(stalled).toBeLessThan(TOTAL);
    await new Promise((r) => setTimeout(r, Math.max(0, outageEnds - Date.now())));
    // Nothing can be committed without S3.
    expect(await committedCount(ctx, batchId)).toBe(stalled);
    await proxy.up();

    const batch = await eventually("the batch to complete", async () => {
      const b = await batchRow(ctx, batchId);
      return b.status === "completed" ? b : undefined;
    });
    expect(agent.process.exitCode).toBeNull();
    const { output, errors } = await readResults(ctx, batch);
    expect(errors).toEqual([]);
    expect(output.map((l) => l.custom_id)).toEqual(requests.map((r) => r.custom_id));
    expect(output.map((l) => requestIndexOf(l.response?.request_id))).toEqual(requests.map((_, i) => i));
    // Each request was run once: the outage cost waiting, not work.
    expect(sim.requests().map((r) => requestIndexOf(r.requestId)).sort((a, b) => a - b)).toEqual(requests.map((_, i) => i));

    const content = await fetch(`${api.url}/v1/files/${fileId}/content`);
    expect(content.status).toBe(200);
    expect((await content.text()).split("\n").filter((l) => l !== "")).toHaveLength(TOTAL);
  });
});

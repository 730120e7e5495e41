import { describe, expect, it } from "vitest";
import { keys } from "@barge/core";
import { faultSuite } from "../support/fault-suite.js";
import { eventually } from "../support/processes.js";
import { batchRow, readResults, requestIndexOf } from "../support/results.js";
import { chatLine, readObject, seedBatch } from "../support/seed.js";

const TOTAL = 200;
const FAILING = [17, 101, 188];
const FAIL_MESSAGE = 'engine-sim: request contains the fail marker "__sim_fail_400__" (simulated permanent failure)';

interface RequestErrorItem {
  object: string;
  custom_id: string;
  code: string;
  message: string;
  attempts: number;
  status_code: number | null;
  line: number;
}
interface ErrorList {
  object: "list";
  data: RequestErrorItem[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}

describe("fault: engine-sim injecting 5% errors and 5% timeouts, plus permanent 400s", () => {
  const suite = faultSuite();

  it("retries the transient faults to success, sends only the 400s to errors, lists them and retries exactly them", async () => {
    const ctx = await suite.context({
      CHUNK_SIZE: "50",
      SEGMENT_MAX_LINES: "20",
      LEASE_SECONDS: "3",
      AGENT_POLL_MS: "50",
      API_POLL_MS: "50",
      AGENT_CONCURRENCY: "8",
      ENGINE_TIMEOUT_MS: "250",
      ENGINE_MAX_ATTEMPTS: "10",
    });
    // A hung request is held 600 ms, past the agent's 250 ms timeout; the fault draws come from a fixed seed.
    const sim = await suite.sim({ models: ["barge-sim-1"], errorRate: 0.05, timeoutRate: 0.05, hangMs: 600, seed: 11 });
    const api = await suite.api(ctx);
    const call = async <T>(method: string, path: string): Promise<{ status: number; body: T }> => {
      const res = await fetch(`${api.url}${path}`, { method });
      return { status: res.status, body: (await res.json()) as T };
    };

    const requests = Array.from({ length: TOTAL }, (_, i) => chatLine(`f-${i}`, FAILING.includes(i) ? `__sim_fail_400__ #${i}` : `flaky ${i}`));
    const { batchId, inputKey } = await seedBatch(ctx, requests);
    // Not finished yet: nothing to retry.
    const early = await call<{ error: { code: string } }>("POST", `/v1/batches/${batchId}/retry`);
    expect([early.status, early.body.error.code]).toEqual([409, "batch_not_finished"]);

    const agent = suite.agent(ctx, { engineUrl: sim.url, agentId: "flaky" });
    await agent.start();
    const finished = (id: string) =>
      eventually(`batch ${id} to complete`, async () => {
        const b = await batchRow(ctx, id);
        return b.status === "completed" ? b : undefined;
      });
    const batch = await finished(batchId);

    const { output, errors } = await readResults(ctx, batch);
    expect(output.map((l) => l.custom_id)).toEqual(requests.filter((_, i) => !FAILING.includes(i)).map((r) => r.custom_id));
    expect(output.every((l) => l.response?.status_code === 200)).toBe(true);
    expect(errors.map((l) => l.custom_id)).toEqual(FAILING.map((i) => `f-${i}`));
    expect(errors.map((l) => l.response?.status_code)).toEqual([400, 400, 400]);
    // The faults really happened, and every request still succeeded (an answer the agent had
    // already timed out on may have been sent too, so "at least once"; the output holds one).
    const stats = sim.stats().counters;
    expect(stats.injectedErrors).toBeGreaterThan(0);
    expect(stats.hung).toBeGreaterThan(0);
    const log = sim.requests().filter((r) => r.requestId?.startsWith(`${batchId}:`));
    const answered = new Set(log.filter((r) => r.status === 200).map((r) => requestIndexOf(r.requestId)));
    expect([...answered].sort((a, b) => a - b)).toEqual(requests.map((_, i) => i).filter((i) => !FAILING.includes(i)));
    expect(output.map((l) => requestIndexOf(l.response?.request_id))).toEqual([...answered].sort((a, b) => a - b));
    for (const i of FAILING) expect(log.filter((r) => requestIndexOf(r.requestId) === i).map((r) => r.status).at(-1), `request ${i}`).toBe(400);

    // The failed requests, queryable and paged in input order.
    const page1 = await call<ErrorList>("GET", `/v1/batches/${batchId}/errors?limit=2`);
    expect(page1.status).toBe(200);
    // Attempts as the engine saw them: 1, unless a slow answer ran into the timeout first.
    const attempts = (i: number) => log.filter((r) => requestIndexOf(r.requestId) === i).length;
    const item = (i: number): RequestErrorItem => ({
      object: "batch.request_error",
      custom_id: `f-${i}`,
      code: "engine_error",
      message: FAIL_MESSAGE,
      attempts: attempts(i),
      status_code: 400,
      line: i + 1,
    });
    expect(page1.body).toEqual({ object: "list", data: [item(17), item(101)], first_id: "f-17", last_id: "f-101", has_more: true });
    const page2 = await call<ErrorList>("GET", `/v1/batches/${batchId}/errors?limit=2&after=f-101`);
    expect(page2.body).toEqual({ object: "list", data: [item(188)], first_id: "f-188", last_id: "f-188", has_more: false });
    expect((await call("GET", `/v1/batches/batch_nope/errors`)).status).toBe(404);

    // Retry: a new batch over exactly the failed lines, linked to the original.
    const retried = await call<{ id: string; status: string; retry_of: string | null; input_file_id: string }>("POST", `/v1/batches/${batchId}/retry`);
    expect(retried.status).toBe(200);
    expect(retried.body.retry_of).toBe(batchId);
    expect(retried.body.id).not.toBe(batchId);
    const original = (await readObject(ctx, inputKey)).split("\n");
    expect(await readObject(ctx, keys.input("default", retried.body.input_file_id))).toBe(FAILING.map((i) => `${original[i]}\n`).join(""));
    const again = await finished(retried.body.id);
    expect(again.retry_of).toBe(batchId);
    const second = await readResults(ctx, again);
    expect(second.output).toEqual([]);
    expect(second.errors.map((l) => l.custom_id)).toEqual(FAILING.map((i) => `f-${i}`));
    const listed = await call<{ retry_of: string | null; request_counts: unknown }>("GET", `/v1/batches/${retried.body.id}`);
    expect(listed.body.retry_of).toBe(batchId);
    expect(listed.body.request_counts).toEqual({ total: 3, completed: 0, failed: 3 });
    expect((await call<{ retry_of: string | null }>("GET", `/v1/batches/${batchId}`)).body.retry_of).toBeNull();

    // A batch without failures has nothing to retry.
    const clean = await seedBatch(ctx, [chatLine("ok-0", "fine"), chatLine("ok-1", "fine too")]);
    await finished(clean.batchId);
    const none = await call<{ error: { code: string } }>("POST", `/v1/batches/${clean.batchId}/retry`);
    expect([none.status, none.body.error.code]).toEqual([409, "no_failed_requests"]);
    expect((await call<ErrorList>("GET", `/v1/batches/${clean.batchId}/errors`)).body).toEqual({ object: "list", data: [], first_id: null, last_id: null, has_more: false });
  });
});

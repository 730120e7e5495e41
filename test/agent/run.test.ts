import { describe, expect, it } from "vitest";
import { batchProgress, headObject, keys, type BatchRow } from "@barge/core";
import { type Agent } from "@barge/agent";
import { expectedBody, type EngineSim, type EngineSimOptions } from "@barge/engine-sim";
import { type TestContext } from "../support/context.js";
import { chatLine, readObject, seedBatch, segmentsGone, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

interface OutLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: Record<string, unknown> } | null;
  error: { code: string; message: string } | null;
}

const parseJsonl = (text: string): OutLine[] =>
  text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as OutLine);

describe("agent: full runs", () => {
  const suite = suiteResources();

  async function setup(env: Record<string, string>, simOptions: EngineSimOptions = {}): Promise<{ ctx: TestContext; sim: EngineSim; agent: Agent }> {
    const ctx = await suite.context({ LEASE_SECONDS: "4", AGENT_POLL_MS: "50", API_POLL_MS: "50", AGENT_CONCURRENCY: "4", ...env });
    const sim = await suite.sim({ models: ["barge-sim-1"], ...simOptions });
    const agent = suite.agent(ctx, { engineUrl: sim.url, agentId: "run-agent" });
    return { ctx, sim, agent };
  }

  const batchRow = (ctx: TestContext, id: string) => ctx.db.selectFrom("batches").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
  const finished = (ctx: TestContext, id: string) =>
    waitFor(`batch ${id} to finish`, async () => {
      const b = await batchRow(ctx, id);
      return ["completed", "cancelled", "failed"].includes(b.status) ? b : undefined;
    });

  it("runs 12 chat requests over 3 chunks into one ordered output, then cleans up", async () => {
    const { ctx, sim, agent } = await setup({ CHUNK_SIZE: "5", SEGMENT_MAX_LINES: "2" });
    const requests = Array.from({ length: 12 }, (_, i) => chatLine(`req-${i}`, `hello number ${i}`));
    // Blank lines are skipped exactly as validation skipped them, without shifting request numbers.
    const raw: (object | string)[] = [...requests.slice(0, 3), "", ...requests.slice(3, 8), "   ", ...requests.slice(8)];
    const { batchId, tenant } = await seedBatch(ctx, raw);
    const chunks = await ctx.db.selectFrom("chunks").selectAll().where("batch_id", "=", batchId).orderBy("idx").execute();
    expect(chunks.map((c) => c.request_count)).toEqual([5, 5, 2]);

    await agent.start();
    const batch: BatchRow = await finished(ctx, batchId);
    expect(batch.status).toBe("completed");
    expect(batch.completed_at).not.toBeNull();
    expect(batch.error_file_id).toBeNull();
    expect(batch.error_key).toBeNull();
    expect(batch.output_key).toBe(keys.output(tenant, batchId));

    const text = await readObject(ctx, keys.output(tenant, batchId));
    const out = parseJsonl(text);
    expect(out.map((l) => l.custom_id)).toEqual(requests.map((r) => r.custom_id));
    out.forEach((line, i) => {
      expect(line.id).toMatch(/^batch_req_/);
      expect(line.error).toBeNull();
      expect(line.response?.status_code).toBe(200);
      expect(line.response?.request_id).toBe(`${batchId}:${i}`);
      const { created: _created, ...body } = line.response!.body;
      expect(body).toEqual(expectedBody("/v1/chat/completions", requests[i]!.body));
    });
    expect(new Set(out.map((l) => l.id)).size).toBe(12);
    expect(await headObject(ctx, keys.errors(tenant, batchId))).toBeUndefined();

    // The output file row describes exactly the stitched object.
    const file = await ctx.db.selectFrom("files").selectAll().where("id", "=", batch.output_file_id!).executeTakeFirstOrThrow();
    expect(file).toMatchObject({ tenant, purpose: "batch_output", status: "processed", filename: `${batchId}_output.jsonl`, s3_key: keys.output(tenant, batchId) });
    expect(file.bytes).toBe(Buffer.byteLength(text));
    expect((await headObject(ctx, keys.output(tenant, batchId)))?.bytes).toBe(Buffer.byteLength(text));

    // Counts and usage come from the committed checkpoints and match the output itself.
    const progress = (await batchProgress(ctx.db, [batchId])).get(batchId)!;
    expect(progress.completed).toBe(12);
    expect(progress.failed).toBe(0);
    const usage = (k: string) => out.reduce((n, l) => n + ((l.response!.body.usage as Record<string, number>)[k] ?? 0), 0);
    expect(progress.promptTokens).toBe(usage("prompt_tokens"));
    expect(progress.completionTokens).toBe(usage("completion_tokens"));

    const done = await ctx.db.selectFrom("chunks").selectAll().where("batch_id", "=", batchId).orderBy("idx").execute();
    expect(done.map((c) => [c.status, c.committed, c.leased_by])).toEqual([
      ["done", 5, null],
      ["done", 5, null],
      ["done", 2, null],
    ]);

    const manifest = JSON.parse(await readObject(ctx, keys.manifest(tenant, batchId))) as Record<string, unknown>;
    expect(manifest).toMatchObject({
      batch_id: batchId,
      status: "completed",
      request_counts: { total: 12, completed: 12, failed: 0 },
      usage: { input_tokens: progress.promptTokens, output_tokens: progress.completionTokens },
      output: { key: keys.output(tenant, batchId), bytes: Buffer.byteLength(text), lines: 12 },
      errors: null,
    });
    // SEGMENT_MAX_LINES=2: no segment held more than 2 results, so at least ceil(5/2)+ceil(5/2)+1 of them.
    expect(manifest.segments).toBe(done.reduce((n, c) => n + c.next_seq, 0));
    expect(manifest.segments).toBeGreaterThanOrEqual(7);

    // Segments go, rows and objects, right after the batch points at the stitched output.
    await segmentsGone(ctx, batchId);

    // Every request reached the engine exactly once.
    const ids = sim.requests().map((r) => r.requestId);
    expect(ids.slice().sort()).toEqual(requests.map((_, i) => `${batchId}:${i}`).sort());

    const agentRow = await ctx.db.selectFrom("agents").selectAll().where("id", "=", "run-agent").executeTakeFirstOrThrow();
    expect(agentRow.models).toEqual(["barge-sim-1"]);
  });

  it("sends engine 400s to errors.jsonl with the engine's body, and only those", async () => {
    const { ctx, sim, agent } = await setup({ CHUNK_SIZE: "4", SEGMENT_MAX_LINES: "3" });
    const failing = new Set([2, 5, 9]);
    const requests = Array.from({ length: 10 }, (_, i) => chatLine(`r${i}`, failing.has(i) ? `please __sim_fail_400__ #${i}` : `fine #${i}`));
    const { batchId, tenant } = await seedBatch(ctx, requests);
    await agent.start();
    const batch = await finished(ctx, batchId);
    expect(batch.status).toBe("completed");

    const out = parseJsonl(await readObject(ctx, keys.output(tenant, batchId)));
    expect(out.map((l) => l.custom_id)).toEqual(requests.filter((_, i) => !failing.has(i)).map((r) => r.custom_id));
    expect(out.every((l) => l.response?.status_code === 200)).toBe(true);

    const errText = await readObject(ctx, keys.errors(tenant, batchId));
    const errs = parseJsonl(errText);
    expect(errs.map((l) => l.custom_id)).toEqual(["r2", "r5", "r9"]);
    for (const [n, line] of errs.entries()) {
      const i = [2, 5, 9][n]!;
      expect(line.error).toBeNull();
      expect(line.response).toEqual({
        status_code: 400,
        request_id: `${batchId}:${i}`,
        body: {
          error: {
            message: 'engine-sim: request contains the fail marker "__sim_fail_400__" (simulated permanent failure)',
            type: "BadRequestError",
            param: null,
            code: 400,
          },
        },
      });
    }
    expect(batch.error_key).toBe(keys.errors(tenant, batchId));
    const errFile = await ctx.db.selectFrom("files").selectAll().where("id", "=", batch.error_file_id!).executeTakeFirstOrThrow();
    expect(errFile).toMatchObject({ purpose: "batch_output", status: "processed", filename: `${batchId}_error.jsonl`, bytes: Buffer.byteLength(errText) });

    const progress = (await batchProgress(ctx.db, [batchId])).get(batchId)!;
    expect([progress.completed, progress.failed]).toEqual([7, 3]);
    // 4xx answers are final: one request per line, no retries.
    expect(sim.requests()).toHaveLength(10);
  });

  it("retries injected 5xx until every request succeeds", async () => {
    const { ctx, sim, agent } = await setup({ CHUNK_SIZE: "10", SEGMENT_MAX_LINES: "5", ENGINE_MAX_ATTEMPTS: "10" }, { errorRate: 0.3, seed: 42 });
    const requests = Array.from({ length: 20 }, (_, i) => chatLine(`x${i}`, `retry me ${i}`));
    const { batchId, tenant } = await seedBatch(ctx, requests);
    await agent.start();
    const batch = await finished(ctx, batchId);
    expect(batch.status).toBe("completed");
    expect(batch.error_file_id).toBeNull();

    const out = parseJsonl(await readObject(ctx, keys.output(tenant, batchId)));
    expect(out.map((l) => l.custom_id)).toEqual(requests.map((r) => r.custom_id));
    expect(out.every((l) => l.response?.status_code === 200)).toBe(true);
    const progress = (await batchProgress(ctx.db, [batchId])).get(batchId)!;
    expect([progress.completed, progress.failed]).toEqual([20, 0]);

    const log = sim.requests();
    expect(log.length).toBeGreaterThan(20);
    expect(log.filter((r) => r.status === 500).length).toBe(log.length - 20);
    // Each request succeeded exactly once, however often it was retried.
    for (let i = 0; i < 20; i++) expect(log.filter((r) => r.requestId === `${batchId}:${i}` && r.status === 200)).toHaveLength(1);
  });
});

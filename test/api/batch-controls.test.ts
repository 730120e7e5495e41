import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { claimChunk, newId } from "@barge/core";
import { call, startBareApi, type TestApi } from "../support/api-harness.js";
import { chatLine, insertBatch, putInputFile, seedBatch } from "../support/seed.js";

const post = (t: TestApi, path: string) => call(t.url, path, { method: "POST" });

describe("batch controls: pause and resume", () => {
  let t: TestApi;
  beforeAll(async () => {
    // No background loops: nothing but these requests moves a batch.
    t = await startBareApi({ CHUNK_SIZE: "2" });
  });
  afterAll(async () => {
    await t?.close();
  });

  const lines = (n: number) => Array.from({ length: n }, (_, i) => chatLine(`p-${i}`, `hello ${i}`));
  const controlEvents = async (batchId: string) =>
    (await t.ctx.db.selectFrom("batch_events").select("kind").where("batch_id", "=", batchId).where("kind", "in", ["paused", "resumed"]).orderBy("seq").execute()).map((e) => e.kind);
  const claim = () => claimChunk(t.ctx.db, { agentId: "controls-test", models: ["barge-sim-1"], leaseSeconds: 30 });

  test("pause sets paused_at, keeps in_progress, stops claims; a repeat is unchanged; resume clears it and claims go on", async () => {
    const { batchId } = await seedBatch(t.ctx, lines(4));
    const paused = await post(t, `/v1/batches/${batchId}/pause`);
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ id: batchId, object: "batch", status: "in_progress", cancel_reason: null });
    expect(typeof paused.body.paused_at).toBe("number");
    expect(await claim()).toBeUndefined();

    const again = await post(t, `/v1/batches/${batchId}/pause`);
    expect(again.status).toBe(200);
    expect(again.body.paused_at).toBe(paused.body.paused_at);
    expect((await call(t.url, `/v1/batches/${batchId}`)).body.paused_at).toBe(paused.body.paused_at);
    expect(await controlEvents(batchId)).toEqual(["paused"]);

    const resumed = await post(t, `/v1/batches/${batchId}/resume`);
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({ id: batchId, status: "in_progress", paused_at: null });
    const twice = await post(t, `/v1/batches/${batchId}/resume`);
    expect(twice.status).toBe(200);
    expect(twice.body).toMatchObject({ status: "in_progress", paused_at: null });
    expect(await controlEvents(batchId)).toEqual(["paused", "resumed"]);

    expect(await claim()).toMatchObject({ batch_id: batchId, idx: 0, status: "leased", attempts: 1 });
  });

  test("pause of a batch that is not in_progress is a 409 naming its status; resume of an unpaused one is unchanged", async () => {
    const { fileId } = await putInputFile(t.ctx, "{}\n");
    const validating = await insertBatch(t.ctx.db, { id: newId("batch_"), input_file_id: fileId });
    const completed = await insertBatch(t.ctx.db, { id: newId("batch_"), input_file_id: fileId, status: "completed", completed_at: new Date() });

    for (const [b, status] of [
      [validating, "validating"],
      [completed, "completed"],
    ] as const) {
      const r = await post(t, `/v1/batches/${b.id}/pause`);
      expect(r.status).toBe(409);
      expect(r.headers.get("x-should-retry")).toBe("false");
      expect(r.body).toEqual({
        error: { message: `Batch is ${status}; only an in_progress batch can be paused.`, type: "invalid_request_error", param: null, code: "batch_not_pausable" },
      });
      const resumed = await post(t, `/v1/batches/${b.id}/resume`);
      expect(resumed.status).toBe(200);
      expect(resumed.body).toMatchObject({ id: b.id, status, paused_at: null });
      expect(await controlEvents(b.id)).toEqual([]);
    }
  });

  test("a paused batch that was cancelled cannot be resumed (409); it stays cancelling", async () => {
    const { batchId } = await seedBatch(t.ctx, lines(2));
    expect((await post(t, `/v1/batches/${batchId}/pause`)).status).toBe(200);
    expect((await post(t, `/v1/batches/${batchId}/cancel`)).body).toMatchObject({ status: "cancelling" });
    const r = await post(t, `/v1/batches/${batchId}/resume`);
    expect(r.status).toBe(409);
    expect(r.body.error).toMatchObject({ message: "Batch is cancelling; only an in_progress batch can be resumed.", code: "batch_not_resumable" });
    expect(await controlEvents(batchId)).toEqual(["paused"]);
  });

  test("another tenant's batch and an unknown id are a 404 on both routes, and nothing changes", async () => {
    const { batchId } = await seedBatch(t.ctx, lines(2), { tenant: "someone-else" });
    for (const id of [batchId, "batch_000000000000000000000000"]) {
      for (const action of ["pause", "resume"]) {
        const r = await post(t, `/v1/batches/${id}/${action}`);
        expect(r.status).toBe(404);
        expect(r.body.error).toMatchObject({ type: "invalid_request_error", param: "batch_id", code: "not_found" });
        expect(r.body.error.message).toContain(id);
      }
    }
    const row = await t.ctx.db.selectFrom("batches").select("paused_at").where("id", "=", batchId).executeTakeFirstOrThrow();
    expect(row.paused_at).toBeNull();
    expect(await controlEvents(batchId)).toEqual([]);
  });
});

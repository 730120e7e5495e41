import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { claimChunk, expireBatches, newId } from "@barge/core";
import { call, jsonl, postJson, startBareApi, type TestApi } from "../support/api-harness.js";
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

  test("expiry keeps counting while paused: a paused batch past expires_at expires and its chunks close", async () => {
    const { batchId } = await seedBatch(t.ctx, lines(4));
    expect((await post(t, `/v1/batches/${batchId}/pause`)).status).toBe(200);
    await t.ctx.db.updateTable("batches").set({ expires_at: new Date(Date.now() - 1000) }).where("id", "=", batchId).execute();
    expect(await expireBatches(t.ctx.db)).toContain(batchId);
    const chunks = await t.ctx.db.selectFrom("chunks").select("status").where("batch_id", "=", batchId).execute();
    expect(chunks.map((c) => c.status)).toEqual(["cancelled", "cancelled"]);
    const r = await post(t, `/v1/batches/${batchId}/resume`);
    expect(r.status).toBe(409);
    expect(r.body.error).toMatchObject({ message: "Batch is finalizing; only an in_progress batch can be resumed.", code: "batch_not_resumable" });
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

describe("the failure threshold's params on create", () => {
  let t: TestApi;
  let fileId: string;
  beforeAll(async () => {
    t = await startBareApi();
    ({ fileId } = await putInputFile(t.ctx, jsonl([chatLine("a", "hi")])));
  });
  afterAll(async () => {
    await t?.close();
  });

  const create = (extra: Record<string, unknown>) => postJson(t.url, "/v1/batches", { input_file_id: fileId, endpoint: "/v1/chat/completions", completion_window: "24h", ...extra });
  const form = (fields: Record<string, string>) => {
    const body = new FormData();
    body.set("model", "barge-sim-1");
    for (const [k, v] of Object.entries(fields)) body.set(k, v);
    body.set("file", new Blob([jsonl([chatLine("f", "hi")])]), "in.jsonl");
    return call(t.url, "/v1/batches", { method: "POST", body });
  };
  const threshold = (b: { max_failure_rate: unknown; min_requests: unknown }) => [b.max_failure_rate, b.min_requests];

  test("JSON fields, form fields and metadata keys set it; a rate alone gets min_requests 100; none leaves both null", async () => {
    expect(threshold((await create({ max_failure_rate: 0.25, min_requests: 10 })).body)).toEqual([0.25, 10]);
    expect(threshold((await create({ max_failure_rate: 0 })).body)).toEqual([0, 100]);
    expect(threshold((await create({})).body)).toEqual([null, null]);
    const meta = await create({ metadata: { barge_max_failure_rate: "0.5", barge_min_requests: "20" } });
    expect(meta.body).toMatchObject({ max_failure_rate: 0.5, min_requests: 20, metadata: { barge_max_failure_rate: "0.5", barge_min_requests: "20" } });
    // The field wins over its metadata key.
    expect(threshold((await create({ max_failure_rate: 1, metadata: { barge_max_failure_rate: "0.1" } })).body)).toEqual([1, 100]);
    const viaForm = await form({ max_failure_rate: "0.3", min_requests: "5" });
    expect(viaForm.status).toBe(200);
    expect(threshold(viaForm.body)).toEqual([0.3, 5]);
    const row = await t.ctx.db.selectFrom("batches").select(["max_failure_rate", "min_requests", "cancel_reason"]).where("id", "=", viaForm.body.id).executeTakeFirstOrThrow();
    expect(row).toEqual({ max_failure_rate: 0.3, min_requests: 5, cancel_reason: null });
  });

  test("bad values are a 400 naming the param, and no batch is made", async () => {
    const before = await t.ctx.db.selectFrom("batches").select((eb) => eb.fn.countAll<string>().as("n")).executeTakeFirstOrThrow();
    const cases: [Promise<{ status: number; body: any }>, string, string][] = [
      [create({ max_failure_rate: 1.5 }), "max_failure_rate", "Invalid value for 'max_failure_rate': must be a number from 0 to 1."],
      [create({ max_failure_rate: -0.1 }), "max_failure_rate", "Invalid value for 'max_failure_rate': must be a number from 0 to 1."],
      [create({ max_failure_rate: "0.5" }), "max_failure_rate", "Invalid value for 'max_failure_rate': must be a number from 0 to 1."],
      [create({ min_requests: 2.5 }), "min_requests", "Invalid value for 'min_requests': must be a whole number from 0 to 2147483647."],
      [create({ min_requests: -1 }), "min_requests", "Invalid value for 'min_requests': must be a whole number from 0 to 2147483647."],
      [create({ metadata: { barge_max_failure_rate: "lots" } }), "metadata", "Invalid value for metadata key 'barge_max_failure_rate': must be a number from 0 to 1."],
      [create({ metadata: { barge_min_requests: "-3" } }), "metadata", "Invalid value for metadata key 'barge_min_requests': must be a whole number from 0 to 2147483647."],
      [form({ max_failure_rate: "" }), "max_failure_rate", "Invalid value for 'max_failure_rate': must be a number from 0 to 1."],
      [form({ max_failure_rate: "2" }), "max_failure_rate", "Invalid value for 'max_failure_rate': must be a number from 0 to 1."],
      [form({ min_requests: "ten" }), "min_requests", "Invalid value for 'min_requests': must be a whole number from 0 to 2147483647."],
    ];
    for (const [answer, param, message] of cases) {
      const r = await answer;
      expect(r.status, message).toBe(400);
      expect(r.body.error).toMatchObject({ type: "invalid_request_error", param, message });
    }
    const after = await t.ctx.db.selectFrom("batches").select((eb) => eb.fn.countAll<string>().as("n")).executeTakeFirstOrThrow();
    expect(after.n).toBe(before.n);
  });
});

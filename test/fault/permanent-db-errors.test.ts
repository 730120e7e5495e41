import OpenAI, { RateLimitError } from "openai";
import { toFile } from "openai/uploads";
import { describe, expect, it } from "vitest";
import { claimBatchWork, newId, validateBatch } from "@barge/core";
import { testLog, type TestContext } from "../support/context.js";
import { faultSuite } from "../support/fault-suite.js";
import { batchRow, chunkRows, readResults } from "../support/results.js";
import { chatLine, insertBatch, putInputFile, seedBatch, seedUnvalidatedBatch, waitFor } from "../support/seed.js";
import { refuseRows } from "../support/db-faults.js";

const FAIL_400 = "__sim_fail_400__";

async function completed(ctx: TestContext, batchId: string) {
  return waitFor(`batch ${batchId} to complete`, async () => {
    const b = await batchRow(ctx, batchId);
    return b.status === "completed" ? b : undefined;
  });
}

async function requestErrors(ctx: TestContext, batchId: string) {
  return ctx.db.selectFrom("request_errors").select(["request_index", "custom_id", "line", "code", "status_code", "attempts"]).where("batch_id", "=", batchId).orderBy("request_index").execute();
}

describe("fault: permanent database errors", () => {
  const suite = faultSuite();
  const env = { CHUNK_SIZE: "10", SEGMENT_MAX_LINES: "10", LEASE_SECONDS: "3", AGENT_POLL_MS: "50", API_POLL_MS: "50", AGENT_CONCURRENCY: "2", CHUNK_MAX_ATTEMPTS: "3" };

  it("stores an engine error of a custom_id holding U+0000 in one attempt, and the agent goes on to a normal batch", async () => {
    const ctx = await suite.context(env);
    const sim = await suite.sim({ models: ["barge-sim-1"] });
    const lines = [chatLine("ok-1", "hello"), chatLine("nul\u0000id", `${FAIL_400} huge`), chatLine("ok-3", "there")];
    const batchId = await seedUnvalidatedBatch(ctx, lines);
    // An agent process: its stderr is the capturing log.
    const agent = suite.children.agent({ ...ctx.env, VLLM_URL: sim.url }, "nul");

    const batch = await completed(ctx, batchId);
    const [chunk] = await chunkRows(ctx, batchId);
    expect([chunk!.status, chunk!.attempts, chunk!.failures, chunk!.unstorable_error, chunk!.completed, chunk!.failed]).toEqual(["done", 1, 0, null, 2, 1]);
    // The row drops the NUL (Postgres text cannot hold it) and keeps the line number; the error file keeps the id as sent.
    expect(await requestErrors(ctx, batchId)).toEqual([{ request_index: 1, custom_id: "nulid", line: 2, code: "engine_error", status_code: 400, attempts: 1 }]);
    const { output, errors } = await readResults(ctx, batch);
    expect(output.map((l) => l.custom_id)).toEqual(["ok-1", "ok-3"]);
    expect(errors.map((l) => [l.custom_id, l.response?.status_code])).toEqual([["nul\u0000id", 400]]);
    expect(agent.logs().filter((l) => l.msg === "chunk run failed" || String(l.msg).includes("refused by Postgres"))).toEqual([]);

    const normal = await seedBatch(ctx, [chatLine("n-1", "after"), chatLine("n-2", "after")]);
    const after = await completed(ctx, normal.batchId);
    expect(after.total_requests).toBe(2);
    expect((await readResults(ctx, after)).output.map((l) => l.custom_id)).toEqual(["n-1", "n-2"]);
  });

  it("gives up a chunk whose results Postgres refuses after one failed run, failing its requests as unstorable_result, and logs it once", async () => {
    const ctx = await suite.context(env);
    const sim = await suite.sim({ models: ["barge-sim-1"] });
    const lines = [chatLine("p-1", "one"), chatLine("p-2", `${FAIL_400} two`), chatLine("p-3", "three")];
    const batchId = await seedUnvalidatedBatch(ctx, lines);
    // Fault injection: a real trigger makes Postgres refuse this batch's engine_error rows with a
    // data exception (SQLSTATE 22023), as it refuses text it cannot store. Other codes pass.
    await refuseRows(ctx.db, { name: "refuse_engine_errors", on: "INSERT", table: "request_errors", when: `NEW.batch_id = '${batchId}' AND NEW.code = 'engine_error'`, errcode: "22023", message: "injected: this row cannot be stored" });
    const agent = suite.children.agent({ ...ctx.env, VLLM_URL: sim.url }, "refused");

    const batch = await completed(ctx, batchId);
    const [chunk] = await chunkRows(ctx, batchId);
    // One run that failed to commit, one that gave the requests up: never CHUNK_MAX_ATTEMPTS runs.
    expect([chunk!.status, chunk!.attempts, chunk!.failures, chunk!.committed, chunk!.completed, chunk!.failed]).toEqual(["done", 2, 1, 3, 0, 3]);
    expect(chunk!.unstorable_error).toBe("injected: this row cannot be stored");
    expect(await requestErrors(ctx, batchId)).toEqual(
      [1, 2, 3].map((line) => ({ request_index: line - 1, custom_id: `p-${line}`, line, code: "unstorable_result", status_code: null, attempts: 0 })),
    );
    const { output, errors } = await readResults(ctx, batch);
    expect(output).toEqual([]);
    expect(errors.map((l) => l.error?.code)).toEqual(["unstorable_result", "unstorable_result", "unstorable_result"]);
    expect(errors[0]!.error?.message).toBe(
      "The request was not run: Postgres refused to store a result of its chunk (injected: this row cannot be stored), so its remaining requests were given up on.",
    );

    const normal = await seedBatch(ctx, [chatLine("n-1", "after")]);
    expect((await readResults(ctx, await completed(ctx, normal.batchId))).output.map((l) => l.custom_id)).toEqual(["n-1"]);
    // Exactly one log line carries the refusal, and no commit retry was logged.
    const logged = agent.logs();
    const refusals = logged.filter((l) => JSON.stringify(l).includes("injected: this row cannot be stored"));
    expect(refusals.map((l) => l.msg)).toEqual(["chunk results refused by Postgres; its remaining requests fail as unstorable_result"]);
    expect(logged.filter((l) => l.msg === "segment commit failed; retrying" || l.msg === "chunk run failed")).toEqual([]);
  });

  it("closes a chunk whose unstorable_result rows Postgres refuses too after CHUNK_MAX_ATTEMPTS claims: its requests count failed, the batch completes with an unstorable_result error, logged once", async () => {
    const ctx = await suite.context(env);
    const sim = await suite.sim({ models: ["barge-sim-1"] });
    const lines = [chatLine("u-1", "one"), chatLine("u-2", `${FAIL_400} two`), chatLine("u-3", "three")];
    const batchId = await seedUnvalidatedBatch(ctx, lines);
    // Fault injection: Postgres refuses every error row of this batch, the agent's own
    // unstorable_result rows included, so no run of the chunk can ever commit.
    await refuseRows(ctx.db, { name: "refuse_all_errors", on: "INSERT", table: "request_errors", when: `NEW.batch_id = '${batchId}'`, errcode: "22023", message: "injected: no error row can be stored" });
    const agent = suite.children.agent({ ...ctx.env, VLLM_URL: sim.url }, "refused-twice");

    const batch = await completed(ctx, batchId);
    const [chunk] = await chunkRows(ctx, batchId);
    // One ordinary run and two unstorable_result runs refused (CHUNK_MAX_ATTEMPTS = 3), then one claim that closes it.
    expect([chunk!.status, chunk!.attempts, chunk!.failures, chunk!.committed, chunk!.completed, chunk!.failed]).toEqual(["done", 4, 3, 3, 0, 3]);
    expect(await requestErrors(ctx, batchId)).toEqual([]);
    expect(sim.requests()).toHaveLength(3);
    const message =
      "Postgres refused to store the results of requests 1-3 (from line 1) on 3 attempts (injected: no error row can be stored), so they were counted failed and have no result line.";
    expect(batch.errors).toEqual([{ code: "unstorable_result", message, line: 1, param: null }]);
    const { output, errors } = await readResults(ctx, batch);
    expect([output, errors]).toEqual([[], []]);
    const api = await suite.api(ctx);
    const seen = await new OpenAI({ baseURL: `${api.url}/v1`, apiKey: "unused", maxRetries: 0 }).batches.retrieve(batchId);
    expect([seen.status, seen.request_counts, seen.errors?.data?.map((e) => [e.code, e.line])]).toEqual(["completed", { total: 3, completed: 0, failed: 3 }, [["unstorable_result", 1]]]);

    const normal = await seedBatch(ctx, [chatLine("n-1", "after")]);
    expect((await readResults(ctx, await completed(ctx, normal.batchId))).output.map((l) => l.custom_id)).toEqual(["n-1"]);
    // The first refusal and the give-up are logged; the repeated refusals in between are not.
    const logged = agent.logs().filter((l) => JSON.stringify(l).includes("injected: no error row can be stored"));
    expect(logged.map((l) => l.msg)).toEqual([
      "chunk results refused by Postgres; its remaining requests fail as unstorable_result",
      "chunk given up after CHUNK_MAX_ATTEMPTS failed claims, Postgres refusing its results; its requests count failed",
    ]);
    expect(agent.logs().filter((l) => l.msg === "chunk run failed")).toEqual([]);
  });

  it("fails a batch whose validation always throws with validation_failed after exactly VALIDATION_MAX_ATTEMPTS claims, freeing its MAX_ACTIVE_BATCHES slot", async () => {
    const ctx = await suite.context({ ...env, LEASE_SECONDS: "2", MAX_ACTIVE_BATCHES: "1", VALIDATION_MAX_ATTEMPTS: "3" });
    const api = await suite.api(ctx);
    const client = new OpenAI({ baseURL: `${api.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const upload = async (id: string) =>
      client.files.create({ file: await toFile(Buffer.from(`${JSON.stringify(chatLine(id, "hi"))}\n`), `${id}.jsonl`), purpose: "batch" });
    const doomed = await upload("doomed");
    // Fault injection: a real trigger makes Postgres refuse, with a data exception (SQLSTATE
    // 22023), every move of a batch reading this file to in_progress: validation fails each time.
    await refuseRows(ctx.db, { name: "refuse_start", on: "UPDATE", table: "batches", when: `NEW.input_file_id = '${doomed.id}' AND NEW.status = 'in_progress'`, errcode: "22023", message: "injected: this batch cannot start" });
    const create = (fileId: string) => client.batches.create({ input_file_id: fileId, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const batch = await create(doomed.id);
    const other = await upload("other");
    // While it validates it holds the only active slot.
    const refused = await create(other.id).then(() => undefined, (e: unknown) => e);
    expect(refused).toBeInstanceOf(RateLimitError);

    const failed = await waitFor("the batch to fail", async () => {
      const b = await batchRow(ctx, batch.id);
      return b.status === "failed" ? b : undefined;
    });
    expect(failed.validation_attempts).toBe(3);
    expect(failed.errors).toEqual([{ code: "validation_failed", message: "injected: this batch cannot start", line: null, param: null }]);
    expect(await ctx.db.selectFrom("chunks").select("idx").where("batch_id", "=", batch.id).execute()).toEqual([]);
    const seen = await client.batches.retrieve(batch.id);
    expect([seen.status, seen.errors?.data?.map((e) => [e.code, e.message])]).toEqual(["failed", [["validation_failed", "injected: this batch cannot start"]]]);
    // The slot is free again.
    expect((await create(other.id)).status).toBe("validating");
  });

  it("fails a batch whose publish Postgres refuses with finalize_failed on its FINALIZE_MAX_ATTEMPTS-th claim, and the agent goes on", async () => {
    // One attempt: a second one would first re-complete the output's multipart upload, which the
    // test S3 server answers with a 500 (a transient error, retried), never reaching Postgres again.
    const ctx = await suite.context({ ...env, LEASE_SECONDS: "2", FINALIZE_MAX_ATTEMPTS: "1" });
    const sim = await suite.sim({ models: ["barge-sim-1"] });
    const { batchId } = await seedBatch(ctx, [chatLine("f-1", "one"), chatLine("f-2", "two")]);
    // Fault injection: a real trigger makes Postgres refuse this batch's move to completed with an
    // integrity violation (SQLSTATE 23514), every time.
    await refuseRows(ctx.db, { name: "refuse_publish", on: "UPDATE", table: "batches", when: `NEW.id = '${batchId}' AND NEW.status = 'completed'`, errcode: "23514", message: "injected: this batch cannot be published" });
    const agent = suite.children.agent({ ...ctx.env, VLLM_URL: sim.url }, "publisher");

    const failed = await waitFor("the batch to fail", async () => {
      const b = await batchRow(ctx, batchId);
      return b.status === "failed" ? b : undefined;
    });
    expect(failed.finalize_attempts).toBe(1);
    expect(failed.errors).toEqual([{ code: "finalize_failed", message: "injected: this batch cannot be published", line: null, param: null }]);
    expect([failed.output_file_id, failed.error_file_id]).toEqual([null, null]);
    // The agent logs after its transition, and its stderr arrives here a moment later.
    const logged = await waitFor("the refusal to be logged", async () => {
      const l = agent.logs().filter((e) => JSON.stringify(e).includes("injected: this batch cannot be published"));
      return l.length > 0 ? l : undefined;
    });

    const normal = await seedBatch(ctx, [chatLine("n-1", "after")]);
    expect((await readResults(ctx, await completed(ctx, normal.batchId))).output.map((l) => l.custom_id)).toEqual(["n-1"]);
    expect(logged.map((l) => l.msg)).toEqual(["finalize refused by Postgres on its last attempt; the batch failed"]);
    expect(agent.logs().filter((e) => JSON.stringify(e).includes("injected: this batch cannot be published"))).toHaveLength(1);
  });

  it("fails at once a validating batch claimed past VALIDATION_MAX_ATTEMPTS, its last validator having died mid-way", async () => {
    const ctx = await suite.context({ ...env, VALIDATION_MAX_ATTEMPTS: "2" });
    const { fileId } = await putInputFile(ctx, `${JSON.stringify(chatLine("d-1", "hi"))}\n`);
    const batchId = newId("batch_");
    // Two claims already made, neither of which finished (a validator killed each time).
    await insertBatch(ctx.db, { id: batchId, input_file_id: fileId, validation_attempts: 2 });
    const claimed = await claimBatchWork(ctx.db, { workerId: "third", kinds: ["validating"], leaseSeconds: 30, batchId });
    expect(claimed?.validation_attempts).toBe(3);
    const deps = { db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, log: testLog, leaseSeconds: 30, maxAttempts: 2, limits: { chunkSize: 10, maxRequests: 100, maxBytes: 1 << 20 } };
    expect(await validateBatch(deps, claimed!)).toBe("failed");
    const b = await batchRow(ctx, batchId);
    expect([b.status, b.errors]).toEqual(["failed", [{ code: "validation_failed", message: "Validation did not finish in 2 attempts.", line: null, param: null }]]);
  });
});

import { describe, expect, it } from "vitest";
import {
  cancelBatch,
  claimBatchWork,
  claimChunk,
  expireBatches,
  failChangedInput,
  newId,
  releaseChunk,
  rescueExpiredChunks,
  validateBatch,
} from "@barge/core";
import type { TestContext } from "../support/context.js";
import { batchRow } from "../support/results.js";
import { chatLine, insertBatch, putInputFile, seedBatch, validatorDeps, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

interface Entry {
  kind: string;
  data: Record<string, unknown>;
}

/** A batch's timeline, oldest first. */
async function timeline(ctx: TestContext, batchId: string): Promise<Entry[]> {
  const rows = await ctx.db.selectFrom("batch_events").select(["kind", "data"]).where("batch_id", "=", batchId).orderBy("seq").execute();
  return rows.map((r) => ({ kind: r.kind, data: r.data as Record<string, unknown> }));
}

/** The `validated` entry of a batch as its own row stamps it (to the millisecond the row's dates carry here). */
async function validatedEntry(ctx: TestContext, batchId: string, lines: number, chunks: number): Promise<Entry> {
  const b = await batchRow(ctx, batchId);
  const seconds = (new Date(b.in_progress_at!).getTime() - new Date(b.created_at).getTime()) / 1000;
  return { kind: "validated", data: { lines, chunks, seconds: expect.closeTo(seconds, 2) } };
}

/** The size of a completed batch's output object, which its one part carried. */
async function outputBytes(ctx: TestContext, batchId: string): Promise<number> {
  const b = await batchRow(ctx, batchId);
  return (await ctx.db.selectFrom("files").select("bytes").where("id", "=", b.output_file_id!).executeTakeFirstOrThrow()).bytes;
}

/** Claims a chunk by hand as an agent that then dies: its one-second lease lapses, and the rescuer takes it back. */
async function claimAndLapse(ctx: TestContext, agentId: string): Promise<void> {
  const held = (await claimChunk(ctx.db, { agentId, models: ["barge-sim-1"], leaseSeconds: 1 }))!;
  await waitFor(`${agentId}'s lease to lapse`, async () => new Date(held.lease_expires_at!).getTime() < Date.now() - 50);
  expect(await rescueExpiredChunks(ctx.db)).toBe(1);
}

/**
 * A timeline split into its parts' entries and the rest. Why apart: a chunk's part is uploaded
 * by the run that finds its neighbours complete, or else by the finalizer after `finalizing`;
 * with two runs overlapping, which it is depends on which ends last. The parts still come after
 * every claim and before `final`.
 */
function splitParts(entries: Entry[]): { rest: Entry[]; parts: Entry[] } {
  const lastClaim = entries.findLastIndex((e) => e.kind === "chunk_claimed");
  const final = entries.findIndex((e) => e.kind === "final");
  entries.forEach((e, i) => {
    if (e.kind === "output_part_uploaded") expect([i > lastClaim, i < final]).toEqual([true, true]);
  });
  return { rest: entries.filter((e) => e.kind !== "output_part_uploaded"), parts: entries.filter((e) => e.kind === "output_part_uploaded") };
}

const CONFIG = { CHUNK_SIZE: "4", SEGMENT_MAX_LINES: "2", AGENT_POLL_MS: "50", API_POLL_MS: "50" };

describe("agent: the batch timeline", () => {
  const suite = suiteResources();

  const runToCompletion = async (ctx: TestContext, batchId: string, agentId: string) => {
    const sim = await suite.sim({ models: ["barge-sim-1"] });
    await suite.agent(ctx, { engineUrl: sim.url, agentId }).start();
    await waitFor("the batch to complete", async () => (await batchRow(ctx, batchId)).status === "completed");
  };

  it("a clean batch of three chunks: validated, one claim per chunk, one part, finalizing, final", async () => {
    const ctx = await suite.context(CONFIG);
    const { batchId } = await seedBatch(ctx, Array.from({ length: 12 }, (_, i) => chatLine(`c-${i}`, `clean ${i}`)));
    await runToCompletion(ctx, batchId, "clean");

    const { rest, parts } = splitParts(await timeline(ctx, batchId));
    expect(parts).toEqual([{ kind: "output_part_uploaded", data: { part: 1, chunks: 3, first_chunk: 0, bytes: await outputBytes(ctx, batchId) } }]);
    expect(rest).toEqual([
      await validatedEntry(ctx, batchId, 12, 3),
      { kind: "chunk_claimed", data: { chunk: 0, agent: "clean", attempt: 1 } },
      { kind: "chunk_claimed", data: { chunk: 1, agent: "clean", attempt: 1 } },
      { kind: "chunk_claimed", data: { chunk: 2, agent: "clean", attempt: 1 } },
      { kind: "finalizing", data: { completed: 12, failed: 0 } },
      { kind: "final", data: { status: "completed", total: 12, completed: 12, failed: 0 } },
    ]);
  });

  it("a rescued lease: lease_lost names the dead holder, and the next claim is attempt 2", async () => {
    const ctx = await suite.context(CONFIG);
    const { batchId } = await seedBatch(ctx, Array.from({ length: 8 }, (_, i) => chatLine(`r-${i}`, `rescue ${i}`)));
    await claimAndLapse(ctx, "dead");
    await runToCompletion(ctx, batchId, "runner");

    const { rest, parts } = splitParts(await timeline(ctx, batchId));
    // The rerun chunk 0 and chunk 1 run side by side. When chunk 1 finishes first, its results are
    // uploaded as part 2 at once, and folded into part 1 when chunk 0 finishes (a part under 5 MiB
    // may only be the last); either way the timeline ends with the one part the output is.
    const whole = { kind: "output_part_uploaded", data: { part: 1, chunks: 2, first_chunk: 0, bytes: await outputBytes(ctx, batchId) } };
    const early = { kind: "output_part_uploaded", data: { part: 2, chunks: 1, first_chunk: 1, bytes: expect.any(Number) } };
    expect(parts).toEqual(parts.length === 1 ? [whole] : [early, whole]);
    expect(rest).toEqual([
      await validatedEntry(ctx, batchId, 8, 2),
      { kind: "chunk_claimed", data: { chunk: 0, agent: "dead", attempt: 1 } },
      { kind: "lease_lost", data: { chunk: 0, agent: "dead" } },
      { kind: "chunk_claimed", data: { chunk: 0, agent: "runner", attempt: 2 } },
      { kind: "chunk_claimed", data: { chunk: 1, agent: "runner", attempt: 1 } },
      { kind: "finalizing", data: { completed: 8, failed: 0 } },
      { kind: "final", data: { status: "completed", total: 8, completed: 8, failed: 0 } },
    ]);
  });

  it("a poisoned chunk: the claim past CHUNK_MAX_ATTEMPTS failures writes poison_chunk, and final counts its failed requests", async () => {
    const ctx = await suite.context({ ...CONFIG, CHUNK_MAX_ATTEMPTS: "1" });
    const { batchId } = await seedBatch(ctx, Array.from({ length: 8 }, (_, i) => chatLine(`p-${i}`, `poison ${i}`)));
    await claimAndLapse(ctx, "dead");
    await runToCompletion(ctx, batchId, "runner");

    const { rest, parts } = splitParts(await timeline(ctx, batchId));
    expect(rest).toEqual([
      await validatedEntry(ctx, batchId, 8, 2),
      { kind: "chunk_claimed", data: { chunk: 0, agent: "dead", attempt: 1 } },
      { kind: "lease_lost", data: { chunk: 0, agent: "dead" } },
      { kind: "chunk_claimed", data: { chunk: 0, agent: "runner", attempt: 2 } },
      { kind: "poison_chunk", data: { chunk: 0, failures: 1, code: "chunk_failed" } },
      { kind: "chunk_claimed", data: { chunk: 1, agent: "runner", attempt: 1 } },
      { kind: "finalizing", data: { completed: 4, failed: 4 } },
      { kind: "final", data: { status: "completed", total: 8, completed: 4, failed: 4 } },
    ]);
    // The poisoned chunk has no output lines: the one part holds chunk 1's alone.
    expect(parts).toEqual([{ kind: "output_part_uploaded", data: { part: 2, chunks: 1, first_chunk: 1, bytes: await outputBytes(ctx, batchId) } }]);
  });

  it("a validation failure: validation_failed with the first 10 of its line-numbered errors, then final", async () => {
    const ctx = await suite.context(CONFIG);
    const text = Array.from({ length: 12 }, (_, i) => `{"custom_id": "v-${i}", broken`).join("\n") + "\n";
    const { fileId } = await putInputFile(ctx, text);
    const batchId = newId("batch_");
    await insertBatch(ctx.db, { id: batchId, input_file_id: fileId });
    const claimed = (await claimBatchWork(ctx.db, { workerId: "validator", kinds: ["validating"], leaseSeconds: 30, batchId }))!;
    const outcome = await validateBatch(validatorDeps(ctx), claimed);
    expect(outcome).toBe("failed");

    const entries = await timeline(ctx, batchId);
    expect(entries.map((e) => e.kind)).toEqual(["validation_failed", "final"]);
    const failed = entries[0]!.data as { code: string; error_count: number; errors: { code: string; line: number | null }[] };
    const stored = (await batchRow(ctx, batchId)).errors!;
    expect([failed.code, failed.error_count, stored.length]).toEqual([stored[0]!.code, 12, 12]);
    expect(failed.errors).toEqual(stored.slice(0, 10));
    expect(failed.errors.map((e) => e.line)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(entries[1]).toEqual({ kind: "final", data: { status: "failed", total: 0, completed: 0, failed: 0 } });
  });

  it("statement by statement: each release reason, a fenced-out release, expiry, a changed input and a cancel while validating", async () => {
    const ctx = await suite.context(CONFIG);
    const lines = Array.from({ length: 8 }, (_, i) => chatLine(`s-${i}`, `step ${i}`));
    const { batchId } = await seedBatch(ctx, lines);
    const claim = async (agentId: string) => (await claimChunk(ctx.db, { agentId, models: ["barge-sim-1"], leaseSeconds: 30, poisonAt: 2 }))!;
    const ref = (c: { batch_id: string; idx: number; fence: number }) => ({ batchId: c.batch_id, idx: c.idx, fence: c.fence });

    const first = await claim("a1");
    expect(await releaseChunk(ctx.db, ref(first))).toBe(true);
    expect(await releaseChunk(ctx.db, { ...ref(await claim("a1")), failed: true, reason: "engine_outage" })).toBe(true);
    expect(await releaseChunk(ctx.db, { ...ref(await claim("a2")), failed: true })).toBe(true);
    // A holder fenced out by a later claim releases nothing and writes nothing.
    const poisoned = await claim("a3");
    expect(await releaseChunk(ctx.db, { ...ref(poisoned), fence: poisoned.fence - 1, failed: true })).toBe(false);
    expect(await releaseChunk(ctx.db, { ...ref(poisoned), unstorableError: "refused" })).toBe(true);
    await ctx.db.updateTable("batches").set({ expires_at: new Date(Date.now() - 1000) }).where("id", "=", batchId).execute();
    expect(await expireBatches(ctx.db)).toEqual([batchId]);

    expect(await timeline(ctx, batchId)).toEqual([
      await validatedEntry(ctx, batchId, 8, 2),
      { kind: "chunk_claimed", data: { chunk: 0, agent: "a1", attempt: 1 } },
      { kind: "chunk_retried", data: { chunk: 0, agent: "a1", reason: "released" } },
      { kind: "chunk_claimed", data: { chunk: 0, agent: "a1", attempt: 2 } },
      { kind: "engine_outage", data: { chunk: 0, agent: "a1" } },
      { kind: "chunk_claimed", data: { chunk: 0, agent: "a2", attempt: 3 } },
      { kind: "chunk_retried", data: { chunk: 0, agent: "a2", reason: "failed" } },
      { kind: "chunk_claimed", data: { chunk: 0, agent: "a3", attempt: 4 } },
      { kind: "poison_chunk", data: { chunk: 0, failures: 2, code: "chunk_failed" } },
      { kind: "chunk_retried", data: { chunk: 0, agent: "a3", reason: "unstorable" } },
      { kind: "finalizing", data: { completed: 0, failed: 0, expired: true } },
    ]);

    // A runner that finds its input replaced fails the batch: `final` with its counts.
    const changed = await seedBatch(ctx, lines.slice(0, 4));
    const held = await claim("a4");
    expect(held.batch_id).toBe(changed.batchId);
    expect(await failChangedInput(ctx.db, { ...ref(held), errors: [{ code: "input_changed", message: "changed", line: null, param: "input_file_id" }] })).toBe(true);
    expect((await timeline(ctx, changed.batchId)).slice(-2)).toEqual([
      { kind: "chunk_claimed", data: { chunk: 0, agent: "a4", attempt: 1 } },
      { kind: "final", data: { status: "failed", total: 4, completed: 0, failed: 0 } },
    ]);

    // A cancel while validating goes straight to cancelled.
    const { fileId } = await putInputFile(ctx, "{}\n");
    const validating = newId("batch_");
    await insertBatch(ctx.db, { id: validating, input_file_id: fileId });
    await ctx.db.transaction().execute((tx) => cancelBatch(tx, validating));
    expect(await timeline(ctx, validating)).toEqual([{ kind: "final", data: { status: "cancelled", total: 0, completed: 0, failed: 0 } }]);
  });
});

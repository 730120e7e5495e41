import { sql } from "kysely";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  BATCH_STATUSES,
  CHUNK_STATUSES,
  FINAL_BATCH_STATUSES,
  FINAL_STATE_TRIGGER,
  newId,
  publishBatch,
  transitionBatch,
  type BatchStatus,
} from "@barge/core";
import { createTestContext, type TestContext } from "../support/context.js";

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(() => ctx.close());
beforeEach(async () => {
  await sql`TRUNCATE files, batches, chunks, segments, output_parts, webhook_events CASCADE`.execute(ctx.db);
});

/** Inserts a batch in `status` with one queued chunk, under a batch lease of fence 1. */
async function seedBatch(status: BatchStatus, o: { expiredAt?: Date } = {}): Promise<string> {
  const fileId = newId("file-");
  const batchId = newId("batch_");
  await ctx.db
    .insertInto("files")
    .values({ id: fileId, tenant: "t", purpose: "batch", filename: "in.jsonl", bytes: 0, status: "processed", s3_key: "k" })
    .execute();
  await ctx.db
    .insertInto("batches")
    .values({
      id: batchId, tenant: "t", status, endpoint: "/v1/chat/completions", model: "m", input_file_id: fileId,
      completion_window: "24h", metadata: JSON.stringify(null), errors: JSON.stringify(null), stitch_state: JSON.stringify(null),
      expires_at: new Date(Date.now() + 86_400_000), expired_at: o.expiredAt ?? null,
      worker_id: "w", worker_lease_expires_at: new Date(Date.now() + 60_000), worker_fence: 1,
    })
    .execute();
  await ctx.db
    .insertInto("chunks")
    .values({
      batch_id: batchId, idx: 0, model: "m", tenant: "t", expires_at: new Date(Date.now() + 86_400_000), priority: 0, batch_created_at: new Date(), request_start: 0,
      request_count: 1, start_line: 1, start_offset: 0, end_offset: 10, next_offset: 0, next_line: 1,
    })
    .execute();
  return batchId;
}

/** The SQLSTATE and constraint of a failed statement. */
async function rejection(p: Promise<unknown>): Promise<{ code: string; constraint: string }> {
  const err = (await p.then(
    () => undefined,
    (e: unknown) => e,
  )) as { code?: string; constraint?: string } | undefined;
  return { code: err?.code ?? "none", constraint: err?.constraint ?? "none" };
}

describe("status CHECK constraints (0008_status_checks)", () => {
  it("reject an unknown batch status, on update and on insert", async () => {
    const id = await seedBatch("in_progress");
    expect(await rejection(sql`UPDATE batches SET status = 'paused' WHERE id = ${id}`.execute(ctx.db))).toEqual({
      code: "23514",
      constraint: "batches_status_check",
    });
    expect(await rejection(sql`UPDATE batches SET status = 'canceled' WHERE id = ${id}`.execute(ctx.db))).toEqual({
      code: "23514",
      constraint: "batches_status_check",
    });
    expect(await rejection(seedBatch("queued" as BatchStatus))).toEqual({ code: "23514", constraint: "batches_status_check" });
    const row = await ctx.db.selectFrom("batches").select("status").where("id", "=", id).executeTakeFirstOrThrow();
    expect(row.status).toBe("in_progress");
  });

  it("reject an unknown chunk status", async () => {
    const id = await seedBatch("in_progress");
    expect(await rejection(sql`UPDATE chunks SET status = 'running' WHERE batch_id = ${id}`.execute(ctx.db))).toEqual({
      code: "23514",
      constraint: "chunks_status_check",
    });
    expect(await rejection(sql`UPDATE chunks SET status = 'in_progress' WHERE batch_id = ${id}`.execute(ctx.db))).toEqual({
      code: "23514",
      constraint: "chunks_status_check",
    });
    const row = await ctx.db.selectFrom("chunks").select("status").where("batch_id", "=", id).executeTakeFirstOrThrow();
    expect(row.status).toBe("queued");
  });

  it("accept every status of the state module", async () => {
    const id = await seedBatch("validating");
    for (const s of BATCH_STATUSES) {
      await sql`UPDATE batches SET status = ${s} WHERE id = ${id}`.execute(ctx.db);
      expect((await ctx.db.selectFrom("batches").select("status").where("id", "=", id).executeTakeFirstOrThrow()).status).toBe(s);
    }
    for (const s of CHUNK_STATUSES) {
      await sql`UPDATE chunks SET status = ${s} WHERE batch_id = ${id}`.execute(ctx.db);
      expect((await ctx.db.selectFrom("chunks").select("status").where("batch_id", "=", id).executeTakeFirstOrThrow()).status).toBe(s);
    }
  });
});

describe("the final-state trigger", () => {
  it("exists as the state module names it and fires on exactly its final statuses", async () => {
    const { rows } = await sql<{ def: string; fn: string }>`
      SELECT pg_get_triggerdef(t.oid) AS def, p.proname AS fn
      FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
      WHERE t.tgname = ${FINAL_STATE_TRIGGER.trigger} AND t.tgrelid = ${FINAL_STATE_TRIGGER.table}::regclass
    `.execute(ctx.db);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.fn).toBe(FINAL_STATE_TRIGGER.function);
    const listed = [...rows[0]!.def.matchAll(/'([a-z_]+)'::text/g)].map((m) => m[1]);
    expect(listed.sort()).toEqual([...FINAL_BATCH_STATUSES].sort());
  });
});

describe("transitionBatch", () => {
  it("stamps the target status's own column, and only that one", async () => {
    const id = await seedBatch("validating");
    expect(await transitionBatch(ctx.db, { batchId: id, fence: 1, from: ["validating"], to: "in_progress", set: { total_requests: 1 } })).toBe(true);
    const b = await ctx.db.selectFrom("batches").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
    expect(b.status).toBe("in_progress");
    expect(b.in_progress_at).toBeInstanceOf(Date);
    expect(b.total_requests).toBe(1);
    expect([b.failed_at, b.finalizing_at, b.completed_at, b.expired_at, b.cancelling_at, b.cancelled_at]).toEqual([null, null, null, null, null, null]);
    expect([b.worker_id, b.worker_lease_expires_at]).toEqual([null, null]);
  });

  it("keeps an expired batch's expired_at when it publishes it as expired", async () => {
    const expiredAt = new Date(Date.now() - 3_600_000);
    const id = await seedBatch("finalizing", { expiredAt });
    expect(await transitionBatch(ctx.db, { batchId: id, fence: 1, from: ["finalizing"], to: "expired" })).toBe(true);
    const b = await ctx.db.selectFrom("batches").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
    expect(b.status).toBe("expired");
    expect(b.expired_at?.getTime()).toBe(expiredAt.getTime());
    expect(b.completed_at).toBeNull();
  });

  it("matches nothing on a stale fence or another status, and refuses a move the module does not list", async () => {
    const id = await seedBatch("in_progress");
    expect(await transitionBatch(ctx.db, { batchId: id, fence: 2, from: ["in_progress"], to: "finalizing" })).toBe(false);
    expect(await transitionBatch(ctx.db, { batchId: id, fence: 1, from: ["finalizing"], to: "completed" })).toBe(false);
    await expect(transitionBatch(ctx.db, { batchId: id, fence: 1, from: ["in_progress"], to: "completed" })).rejects.toThrow(
      /no transition from in_progress to completed/,
    );
    await expect(transitionBatch(ctx.db, { batchId: id, fence: 1, from: [], to: "completed" })).rejects.toThrow(/needs a status to move from/);
    const b = await ctx.db.selectFrom("batches").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
    expect([b.status, b.finalizing_at, b.completed_at]).toEqual(["in_progress", null, null]);
  });
});

describe("publishBatch", () => {
  const publication = (batchId: string, fence: number) => ({
    batchId,
    fence,
    from: "finalizing" as const,
    to: "completed" as const,
    files: [{ id: `${batchId}-o`, tenant: "t", purpose: "batch_output" as const, filename: "o.jsonl", bytes: 3, status: "processed" as const, s3_key: "o" }],
    outputFileId: `${batchId}-o`,
    errorFileId: null,
    outputKey: "o",
    errorKey: null,
  });

  it("inserts the file rows, moves the batch, forgets its output parts and fires the trigger, in one go", async () => {
    const id = await seedBatch("finalizing");
    await ctx.db.insertInto("output_parts").values({ batch_id: id, first_chunk: 0, last_chunk: 0, part_number: 1, bytes: 3 }).execute();
    expect(await publishBatch(ctx.db, publication(id, 1))).toBe(true);
    const b = await ctx.db.selectFrom("batches").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
    expect([b.status, b.output_file_id, b.output_key, b.error_file_id]).toEqual(["completed", `${id}-o`, "o", null]);
    expect(b.completed_at).toBeInstanceOf(Date);
    expect(await ctx.db.selectFrom("files").select("id").where("id", "=", `${id}-o`).execute()).toHaveLength(1);
    expect(await ctx.db.selectFrom("output_parts").select("batch_id").where("batch_id", "=", id).execute()).toHaveLength(0);
    const events = await ctx.db.selectFrom("webhook_events").select("type").where("batch_id", "=", id).execute();
    expect(events.map((e) => e.type)).toEqual(["batch.completed"]);
    // A re-run after a crash finds its file row there already and keeps it; the move itself is spent.
    expect(await publishBatch(ctx.db, publication(id, 1))).toBe(false);
  });

  it("publishes nothing, not even the file rows, for a finalizer that lost the batch", async () => {
    const id = await seedBatch("finalizing");
    await ctx.db.insertInto("output_parts").values({ batch_id: id, first_chunk: 0, last_chunk: 0, part_number: 1, bytes: 3 }).execute();
    expect(await publishBatch(ctx.db, publication(id, 2))).toBe(false);
    expect(await ctx.db.selectFrom("files").select("id").where("id", "=", `${id}-o`).execute()).toHaveLength(0);
    expect(await ctx.db.selectFrom("output_parts").select("batch_id").where("batch_id", "=", id).execute()).toHaveLength(1);
    const b = await ctx.db.selectFrom("batches").select(["status", "completed_at"]).where("id", "=", id).executeTakeFirstOrThrow();
    expect([b.status, b.completed_at]).toEqual(["finalizing", null]);
  });
});

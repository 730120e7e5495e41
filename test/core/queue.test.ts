import { sql } from "kysely";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  advanceCheckpoint,
  claimBatchWork,
  claimChunk,
  completeChunk,
  markFinalizing,
  newId,
  recordSegments,
  releaseChunk,
  renewChunkLease,
  rescueExpiredChunks,
  type SegmentCommit,
} from "@barge/core";
import { createTestContext, type TestContext } from "../support/context.js";

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(() => ctx.close());
beforeEach(async () => {
  await sql`TRUNCATE files, batches, chunks, segments, agents CASCADE`.execute(ctx.db);
});

/** Inserts an in_progress batch with `chunks` queued chunks of 10 requests each. */
async function seedBatch(o: { model?: string; priority?: number; chunks?: number; createdAt?: Date; expiresAt?: Date } = {}) {
  const fileId = newId("file-");
  const batchId = newId("batch_");
  const createdAt = o.createdAt ?? new Date();
  const expiresAt = o.expiresAt ?? new Date(Date.now() + 86_400_000);
  await ctx.db
    .insertInto("files")
    .values({ id: fileId, tenant: "t", purpose: "batch", filename: "in.jsonl", bytes: 0, status: "processed", s3_key: "k", upload_expires_at: null, expires_at: null })
    .execute();
  await ctx.db
    .insertInto("batches")
    .values({
      id: batchId, tenant: "t", status: "in_progress", endpoint: "/v1/chat/completions", model: o.model ?? "m",
      input_file_id: fileId, completion_window: "24h", metadata: JSON.stringify(null), errors: JSON.stringify(null),
      priority: o.priority ?? 0, total_requests: (o.chunks ?? 1) * 10, output_file_id: null, error_file_id: null,
      output_key: null, error_key: null, created_at: createdAt, in_progress_at: createdAt, expires_at: expiresAt,
      finalizing_at: null, completed_at: null, failed_at: null, expired_at: null, cancelling_at: null, cancelled_at: null,
      worker_id: null, worker_lease_expires_at: null, stitch_state: JSON.stringify(null),
    })
    .execute();
  const n = o.chunks ?? 1;
  await ctx.db
    .insertInto("chunks")
    .values(
      Array.from({ length: n }, (_, i) => ({
        batch_id: batchId, idx: i, model: o.model ?? "m", tenant: "t", expires_at: expiresAt, priority: o.priority ?? 0, batch_created_at: createdAt,
        request_start: i * 10, request_count: 10, start_line: i * 10 + 1, start_offset: i * 1000, end_offset: (i + 1) * 1000,
        next_offset: i * 1000, next_line: i * 10 + 1,
      })),
    )
    .execute();
  return batchId;
}

const commit = (batchId: string, idx: number, fence: number, seq: number, requests: number): SegmentCommit => ({
  batchId, idx, fence, seq, requests, nextOffset: 0, nextLine: 0, completed: requests, failed: 0,
  promptTokens: 1, completionTokens: 1, cachedTokens: 0, reasoningTokens: 0,
  objects: [{ kind: "output", key: `seg-${idx}-${seq}-${fence}`, bytes: 10, lines: requests }],
});

describe("chunk claim", () => {
  // One tenant, one deadline: the deadline comes before priority now (fair share, issue 18), so
  // priority, then batch age, then chunk index decide only among batches due at the same time
  // (test/core/fair-share covers the deadline and the tenants).
  it("orders one tenant's batches due together by priority, then batch age, then chunk index, and only for served models", async () => {
    const expiresAt = new Date(Date.now() + 86_400_000);
    const old = await seedBatch({ chunks: 2, createdAt: new Date(Date.now() - 60_000), expiresAt });
    const young = await seedBatch({ chunks: 1, expiresAt });
    const urgent = await seedBatch({ chunks: 1, priority: 5, createdAt: new Date(Date.now() + 60_000), expiresAt });
    await seedBatch({ chunks: 1, model: "other", expiresAt });
    const order: string[] = [];
    for (;;) {
      const c = await claimChunk(ctx.db, { agentId: "a", models: ["m"], leaseSeconds: 30 });
      if (!c) break;
      order.push(`${c.batch_id}/${c.idx}`);
      expect([c.status, c.leased_by, c.fence, c.attempts]).toEqual(["leased", "a", 1, 1]);
    }
    expect(order).toEqual([`${urgent}/0`, `${old}/0`, `${old}/1`, `${young}/0`]);
  });

  it("never hands one chunk to two concurrent claimers", async () => {
    await seedBatch({ chunks: 30 });
    const claims = await Promise.all(
      Array.from({ length: 40 }, (_, i) => claimChunk(ctx.db, { agentId: `agent-${i % 4}`, models: ["m"], leaseSeconds: 30 })),
    );
    const got = claims.filter((c) => c !== undefined).map((c) => c!.idx);
    expect(got.length).toBe(30);
    expect(new Set(got).size).toBe(30);
  });
});

describe("leases and fencing", () => {
  it("rescues a lapsed lease and fences the old holder out of every write", async () => {
    const batchId = await seedBatch({ chunks: 1 });
    const first = (await claimChunk(ctx.db, { agentId: "a", models: ["m"], leaseSeconds: 30 }))!;
    expect(await ctx.db.transaction().execute((tx) => advanceCheckpoint(tx, commit(batchId, 0, first.fence, 0, 4)))).toBe(true);

    await sql`UPDATE chunks SET lease_expires_at = now() - interval '1 second'`.execute(ctx.db);
    expect(await rescueExpiredChunks(ctx.db)).toBe(1);
    expect(await rescueExpiredChunks(ctx.db)).toBe(0);
    const second = (await claimChunk(ctx.db, { agentId: "b", models: ["m"], leaseSeconds: 30 }))!;
    expect(second.fence).toBe(first.fence + 1);
    expect([second.committed, second.next_seq]).toEqual([4, 1]);

    // The old holder: heartbeat, commit, complete and release all match nothing.
    expect(await renewChunkLease(ctx.db, { batchId, idx: 0, fence: first.fence, leaseSeconds: 30 })).toBeUndefined();
    expect(await ctx.db.transaction().execute((tx) => advanceCheckpoint(tx, commit(batchId, 0, first.fence, 1, 6)))).toBe(false);
    expect(await ctx.db.transaction().execute((tx) => completeChunk(tx, { batchId, idx: 0, fence: first.fence }))).toBe(false);
    expect(await releaseChunk(ctx.db, { batchId, idx: 0, fence: first.fence })).toBe(false);

    // The new holder proceeds; a replay of the same segment number is rejected.
    expect(await renewChunkLease(ctx.db, { batchId, idx: 0, fence: second.fence, leaseSeconds: 30 })).toEqual({ batchStatus: "in_progress", paused: false });
    await ctx.db.transaction().execute(async (tx) => {
      expect(await advanceCheckpoint(tx, commit(batchId, 0, second.fence, 1, 6))).toBe(true);
      await recordSegments(tx, commit(batchId, 0, second.fence, 1, 6));
    });
    expect(await ctx.db.transaction().execute((tx) => advanceCheckpoint(tx, commit(batchId, 0, second.fence, 1, 6)))).toBe(false);
    const row = await ctx.db.selectFrom("chunks").selectAll().executeTakeFirstOrThrow();
    expect([row.committed, row.next_seq, row.completed, row.leased_by]).toEqual([10, 2, 10, "b"]);
    const segs = await ctx.db.selectFrom("segments").select(["seq", "s3_key"]).execute();
    expect(segs).toEqual([{ seq: 1, s3_key: `seg-0-1-${second.fence}` }]);
  });

  it("does not let a checkpoint run past the chunk's request count", async () => {
    const batchId = await seedBatch({ chunks: 1 });
    const c = (await claimChunk(ctx.db, { agentId: "a", models: ["m"], leaseSeconds: 30 }))!;
    expect(await ctx.db.transaction().execute((tx) => advanceCheckpoint(tx, commit(batchId, 0, c.fence, 0, 11)))).toBe(false);
    expect(await ctx.db.transaction().execute((tx) => completeChunk(tx, { batchId, idx: 0, fence: c.fence }))).toBe(false);
  });
});

describe("finalize hand-off", () => {
  it("moves the batch to finalizing exactly once when concurrent agents finish its last chunks", async () => {
    const batchId = await seedBatch({ chunks: 6 });
    const claimed = await Promise.all(
      Array.from({ length: 6 }, (_, i) => claimChunk(ctx.db, { agentId: `a${i}`, models: ["m"], leaseSeconds: 30 })),
    );
    for (const c of claimed) {
      await ctx.db.transaction().execute((tx) => advanceCheckpoint(tx, commit(batchId, c!.idx, c!.fence, 0, 10)));
    }
    const flips = await Promise.all(
      claimed.map((c) =>
        ctx.db.transaction().execute(async (tx) => {
          expect(await completeChunk(tx, { batchId, idx: c!.idx, fence: c!.fence })).toBe(true);
          return markFinalizing(tx, batchId);
        }),
      ),
    );
    expect(flips.filter(Boolean).length).toBe(1);
    const b = await ctx.db.selectFrom("batches").select(["status"]).where("id", "=", batchId).executeTakeFirstOrThrow();
    expect(b.status).toBe("finalizing");

    const w1 = await claimBatchWork(ctx.db, { workerId: "w1", kinds: ["finalizing"], leaseSeconds: 30 });
    const w2 = await claimBatchWork(ctx.db, { workerId: "w2", kinds: ["finalizing"], leaseSeconds: 30 });
    expect([w1?.id, w1?.worker_fence, w2]).toEqual([batchId, 1, undefined]);
  });
});

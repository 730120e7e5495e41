import { Hono } from "hono";
import { Conflict, NotFound, pauseBatch, recordBatchEvent, resumeBatch, type BatchRow, type Db } from "@barge/core";
import { tenantOf } from "../auth.js";
import type { ApiDeps, AppEnv } from "../deps.js";
import { knownId } from "../params.js";
import { presentBatch } from "../present.js";
import { findBatch } from "../store/batches.js";

/**
 * Barge's batch controls: pause and resume. Both are idempotent: a repeat answers the batch
 * unchanged and writes no second timeline entry. The status stays `in_progress` while paused,
 * so OpenAI's SDKs keep polling as usual; `paused_at` tells the pause.
 */
export function batchControlsRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();

  const batchOf = async (tenant: string, raw: string): Promise<BatchRow> => {
    const id = knownId(raw, "batch_", "batch", "batch_id");
    const batch = await findBatch(deps.db, tenant, id);
    if (!batch) throw new NotFound("batch", id, "batch_id");
    return batch;
  };

  app.post("/:id/pause", async (c) => {
    const batch = await batchOf(tenantOf(c), c.req.param("id"));
    if (batch.status === "in_progress" && batch.paused_at !== null) return c.json(await presentBatch(deps, batch));
    if (batch.status !== "in_progress") throw notRunning(batch, "paused", "batch_not_pausable");
    const paused = await change(deps.db, batch.id, pauseBatch, "paused");
    // Undefined: another request paused it first (fine), or the batch moved on since it was read.
    const now = paused ?? (await batchOf(batch.tenant, batch.id));
    if (now.status !== "in_progress") throw notRunning(now, "paused", "batch_not_pausable");
    return c.json(await presentBatch(deps, now));
  });

  app.post("/:id/resume", async (c) => {
    const batch = await batchOf(tenantOf(c), c.req.param("id"));
    if (batch.paused_at === null) return c.json(await presentBatch(deps, batch));
    if (batch.status !== "in_progress") throw notRunning(batch, "resumed", "batch_not_resumable");
    const resumed = await change(deps.db, batch.id, resumeBatch, "resumed");
    return c.json(await presentBatch(deps, resumed ?? (await batchOf(batch.tenant, batch.id))));
  });

  return app;
}

/** Applies a control and writes its timeline entry in the same transaction, only when it changed the batch. */
function change(
  db: Db,
  batchId: string,
  apply: typeof pauseBatch,
  kind: "paused" | "resumed",
): Promise<BatchRow | undefined> {
  return db.transaction().execute(async (tx) => {
    const row = await apply(tx, batchId);
    if (row) await recordBatchEvent(tx, batchId, kind);
    return row;
  });
}

function notRunning(batch: BatchRow, verb: string, code: string): Conflict {
  return new Conflict(`Batch is ${batch.status}; only an in_progress batch can be ${verb}.`, code);
}

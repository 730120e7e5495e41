import { sql } from "kysely";
import type { Db } from "../db/connect.js";

/** A model with queued chunks, and the creation time of its oldest batch among them. */
export interface WaitingModel {
  model: string;
  oldest: Date;
}

/**
 * The models that have queued chunks, oldest waiting batch first.
 * Why: an agent that starts its own engine (ENGINE_COMMAND) must pick which model to load, and
 * when to swap: the model whose work has waited longest. One grouped read over the claim index
 * (model, ..., batch_created_at) answers it without touching any lease.
 */
export async function waitingModels(db: Db): Promise<WaitingModel[]> {
  const { rows } = await sql<WaitingModel>`
    SELECT model, min(batch_created_at) AS oldest
    FROM chunks
    WHERE status = 'queued'
      -- A paused batch's chunks cannot be claimed, so they are no reason to load its model.
      AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = chunks.batch_id AND b.paused_at IS NOT NULL)
    GROUP BY model
    ORDER BY oldest, model
  `.execute(db);
  return rows.map((r) => ({ model: r.model, oldest: new Date(r.oldest) }));
}

import { claimChunk, LeaseLost, queuedWorkExists, type AgentConfig, type Db, type Logger } from "@barge/core";
import type { ChunkRuns } from "./chunk-runs.js";
import type { EngineClient } from "./engine/engine-client.js";
import type { EngineModels } from "./engine/models.js";
import { finalizeNext, type FinalizerDeps } from "./finalize/finalizer.js";

export interface ClaimLoopDeps {
  db: Db;
  log: Logger;
  config: Pick<AgentConfig, "LEASE_SECONDS" | "CHUNK_MAX_ATTEMPTS">;
  agentId: string;
  engine: EngineClient;
  models: EngineModels;
  runs: ChunkRuns;
  finalizer: FinalizerDeps;
  /** The agent's stop: the loop claims nothing more once it aborts. */
  signal: AbortSignal;
  /** Why no new chunk may be claimed now (GPU protection); null to claim. Runs going on are not affected. */
  claimsPaused: () => string | null;
}

/**
 * Finalizes one batch (the one named, or any whose lease is free); true when it did. A failure
 * is logged, not thrown: the batch's lease lapses and it is finalized again.
 */
export async function finalizeOne(deps: Pick<ClaimLoopDeps, "agentId" | "finalizer" | "log">, batchId?: string): Promise<boolean> {
  try {
    return (await finalizeNext(deps.finalizer, deps.agentId, batchId)) !== undefined;
  } catch (err) {
    if (err instanceof LeaseLost) deps.log.info({ err: err.message, batch: batchId }, "finalize taken over by another worker");
    else deps.log.error({ err, batch: batchId }, "finalize failed; it is retried once the batch lease lapses");
    return false;
  }
}

/**
 * One pass of the claim loop: finalize what the runs made ready (and any other finalizable
 * batch), then wait for a downed engine, or claim a chunk (unless claims are paused), or swap
 * the engine's model. True when
 * it did something, so the loop looks again at once; a failure is logged, and what was done
 * before it still counts.
 */
async function claimStep(deps: ClaimLoopDeps): Promise<boolean> {
  const { runs, models, signal } = deps;
  let worked = false;
  try {
    for (const batchId of [...runs.finalizable]) {
      runs.finalizable.delete(batchId);
      if (await finalizeOne(deps, batchId)) worked = true;
    }
    if (await finalizeOne(deps)) worked = true;
    if (signal.aborted) return worked;
    if (runs.engineDown && runs.count === 0) {
      // A supervised engine that died is being restarted by its supervisor; this waits for it.
      const served = await models.waitForModels();
      if (served.length > 0) {
        models.list = served;
        deps.log.info({ models: models.list }, "engine answers again; claiming");
      }
      runs.engineDown = false;
      worked = true;
    } else if (runs.wantsRun() && Date.now() >= runs.claimNotBefore && deps.claimsPaused() === null) {
      // The cheap probe first: an idle fleet polls far more often than it finds work.
      const chunk = (await queuedWorkExists(deps.db, models.list))
        ? await claimChunk(deps.db, {
            agentId: deps.agentId,
            models: models.list,
            leaseSeconds: deps.config.LEASE_SECONDS,
            poisonAt: deps.config.CHUNK_MAX_ATTEMPTS,
          })
        : undefined;
      if (chunk) {
        runs.start(deps.engine, chunk);
        worked = true;
      } else if (runs.count === 0 && (await models.maybeSwap())) {
        worked = true;
      }
    }
  } catch (err) {
    deps.log.error({ err }, "claim loop step failed");
  }
  return worked;
}

/**
 * Claims and runs chunks until the agent stops, finalizing the batches its runs complete first;
 * then waits for every run to commit, release or drop its chunk.
 */
export async function runClaimLoop(deps: ClaimLoopDeps): Promise<void> {
  const { runs, signal } = deps;
  while (!signal.aborted) {
    const seen = runs.mark();
    const worked = await claimStep(deps);
    if (worked || runs.finalizable.size > 0 || signal.aborted || runs.wokenSince(seen)) continue;
    await runs.sleep();
  }
  // Stopping: every run was told how to stop; wait until each has committed, released or dropped its chunk.
  await runs.settled();
}

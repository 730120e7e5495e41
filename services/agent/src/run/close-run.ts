import {
  closeCancelledChunk,
  completeChunk,
  isPermanentDbError,
  LeaseLost,
  markFinalizing,
  releaseChunk,
  storableText,
  type Db,
} from "@barge/core";
import { withRetries } from "./retry.js";
import type { ChunkOutcome, RunStop } from "./run-stop.js";
import type { ChunkRef } from "./segment-writer.js";

/** How long closing a fully committed chunk keeps retrying Postgres errors. */
const CLOSE_RETRY_MS = 60_000;

export interface CloseRunOptions {
  db: Db;
  ref: ChunkRef;
  stop: RunStop;
  /** Every request of the chunk is committed. */
  finishedAll: boolean;
  /** The chunk's output joins the batch's output upload: built before the chunk may complete. */
  buildPart: () => Promise<void>;
  /** Called when the run left its batch ready for the finalizer (now finalizing, or cancelling). */
  onFinalizable?: ((batchId: string) => void) | undefined;
  /** The error for a run that stopped for no reason with requests left unreleased. */
  unfinished: () => Error;
}

/**
 * The close path of a chunk run whose writer has committed what it could: hands the chunk on as
 * its stop reason says (complete, close cancelled, release, release counting a failure or
 * taking back the attempt of a paused batch's claim) and
 * names the outcome. A failed run releases its chunk and rethrows the failure.
 */
export async function closeRun(o: CloseRunOptions): Promise<ChunkOutcome> {
  const { db, ref, stop } = o;
  const reason = stop.reason;
  if (reason === "lost") return "lost";
  if (reason === "abandon") return "abandoned";
  if (reason === "failed") {
    // The checkpoint is consistent whatever failed, so the next holder can resume right away.
    // Results Postgres refused for their data would be refused on every run: the next one gives them up.
    const release = isPermanentDbError(stop.failure)
      ? releaseChunk(db, { ...ref, unstorableError: storableText(errorText(stop.failure), 1000) })
      : releaseChunk(db, { ...ref, failed: true });
    await release.catch(() => false);
    throw stop.failure;
  }

  if (o.finishedAll) return completeRun(o);
  if (reason === "cancel") {
    if (!(await closeCancelledChunk(db, ref))) return "lost";
    o.onFinalizable?.(ref.batchId);
    return "cancelled";
  }
  if (reason === "release") return (await releaseChunk(db, ref)) ? "released" : "lost";
  // The user's pause is neither a failure nor a try: the chunk goes back as if never claimed.
  if (reason === "pause") return (await releaseChunk(db, { ...ref, paused: true })) ? "paused" : "lost";
  // An outage counts towards the poison cap: a request that crashes the engine would otherwise
  // take it down again on every claim, forever.
  if (reason === "outage") return (await releaseChunk(db, { ...ref, failed: true, reason: "engine_outage" })) ? "engine_down" : "lost";
  throw o.unfinished();
}

/** Every request of the chunk is committed: closes the chunk and, when it was the batch's last, readies the batch for the finalizer. */
async function completeRun(o: CloseRunOptions): Promise<"completed"> {
  const { db, ref } = o;
  await o.buildPart();
  const finalizing = await withRetries(
    () =>
      db.transaction().execute(async (tx) => {
        if (!(await completeChunk(tx, ref))) throw new LeaseLost(`completing chunk ${ref.batchId}/${ref.idx}`);
        return markFinalizing(tx, ref.batchId);
      }),
    { retryable: (err) => !(err instanceof LeaseLost) && !isPermanentDbError(err), maxMs: CLOSE_RETRY_MS },
  );
  if (finalizing || o.stop.reason === "cancel") o.onFinalizable?.(ref.batchId);
  return "completed";
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

import { giveUpUnstorableChunk, LeaseLost, markFinalizing, recordUsage, type BatchErrorEntry, type ChunkRow, type Db, type Logger } from "@barge/core";
import type { ChunkRun } from "./chunk-runner.js";

export interface GiveUpRunDeps {
  db: Db;
  log: Logger;
  /** Called when closing the chunk left its batch ready for the finalizer. */
  onFinalizable?: (batchId: string) => void;
}

/** The batch error that says which requests a given-up chunk lost, and why. */
export function givenUpEntry(chunk: Pick<ChunkRow, "request_start" | "request_count" | "committed" | "next_line" | "failures" | "unstorable_error">): BatchErrorEntry {
  const first = chunk.request_start + chunk.committed + 1;
  const last = chunk.request_start + chunk.request_count;
  return {
    code: "unstorable_result",
    message: `Postgres refused to store the results of requests ${first}-${last} (from line ${chunk.next_line}) on ${chunk.failures} attempts (${chunk.unstorable_error}), so they were counted failed and have no result line.`,
    line: chunk.next_line,
    param: null,
  };
}

/**
 * Closes a claimed chunk that is given up (see `isGivenUp`) as a run that sends nothing and
 * commits nothing: `giveUpUnstorableChunk` marks it done with its uncommitted requests failed
 * (and counted in its tenant's usage), and the batch turns finalizing when it was the last
 * chunk. Logged once, here: the refusals before it were retries of one error.
 */
export function giveUpRun(deps: GiveUpRunDeps, chunk: ChunkRow): ChunkRun {
  const ref = { batchId: chunk.batch_id, idx: chunk.idx, fence: chunk.fence };
  const done = deps.db
    .transaction()
    .execute(async (tx) => {
      if (!(await giveUpUnstorableChunk(tx, { ...ref, entry: givenUpEntry(chunk) }))) throw new LeaseLost(`giving up chunk ${ref.batchId}/${ref.idx}`);
      const finalizing = await markFinalizing(tx, ref.batchId);
      // Exact: the fence held, so nothing was committed since this claim read `committed`.
      const lost = chunk.request_count - chunk.committed;
      await recordUsage(tx, { ...ref, requests: lost, failed: lost, promptTokens: 0, completionTokens: 0, cachedTokens: 0, reasoningTokens: 0 });
      return finalizing;
    })
    .then(
      (finalizing) => {
        deps.log.error(
          { batch: ref.batchId, chunk: ref.idx, failures: chunk.failures, unstorable: chunk.unstorable_error, lost: chunk.request_count - chunk.committed },
          "chunk given up after CHUNK_MAX_ATTEMPTS failed claims, Postgres refusing its results; its requests count failed",
        );
        if (finalizing) deps.onFinalizable?.(ref.batchId);
        return "completed" as const;
      },
      (err: unknown) => {
        if (err instanceof LeaseLost) return "lost" as const;
        throw err;
      },
    );
  return { stop: () => undefined, done, tail: Promise.resolve() };
}

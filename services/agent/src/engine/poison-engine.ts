import type { ChunkRow } from "@barge/core";
import { EngineRequestError, type EngineClient } from "./engine-client.js";
import type { FailureCode } from "../run/result-line.js";

/** Why a claimed chunk's remaining requests are failed without reaching the engine. */
export interface Poison {
  code: Extract<FailureCode, "chunk_failed" | "unstorable_result">;
  message: string;
}

/**
 * Whether a claimed chunk is poisoned: Postgres refused its results for their data (a retry
 * would fail the same way), or its claims ended in a crash, a failed run or an engine outage
 * `maxAttempts` times (CHUNK_MAX_ATTEMPTS).
 */
export function poisonOf(chunk: Pick<ChunkRow, "failures" | "unstorable_error">, maxAttempts: number): Poison | undefined {
  if (chunk.unstorable_error !== null) {
    return { code: "unstorable_result", message: `The request was not run: Postgres refused to store a result of its chunk (${chunk.unstorable_error}), so its remaining requests were given up on.` };
  }
  if (chunk.failures >= maxAttempts) {
    return { code: "chunk_failed", message: `The request was not run: its chunk failed ${chunk.failures} times (a crash, a failed run or an engine outage each time), so it was given up on.` };
  }
  return undefined;
}

/**
 * Whether a claimed chunk is past poisoning: `maxAttempts` of its claims failed (CHUNK_MAX_ATTEMPTS),
 * the last one refused by Postgres for its data, so even the `unstorable_result` rows of a
 * poisoned run may not commit. It is closed without a run (see `giveUpRun`).
 */
export function isGivenUp(chunk: Pick<ChunkRow, "failures" | "unstorable_error">, maxAttempts: number): boolean {
  return chunk.unstorable_error !== null && chunk.failures >= maxAttempts;
}

/**
 * The engine a poisoned chunk runs against: it is not sent to the real engine again. Every
 * remaining request fails at once with the poison's code (attempts 0) and goes through the
 * ordinary runner, so it is committed, fenced and counted like any other error line and the
 * batch can still finish.
 */
export function poisonEngine(engine: EngineClient, poison: Poison): EngineClient {
  return {
    send: async () => {
      throw new EngineRequestError(poison.code, poison.message, 0);
    },
    models: (signal) => engine.models(signal),
    close: async () => {},
  };
}

import { EngineRequestError, type EngineClient } from "./engine-client.js";

/**
 * The engine a poisoned chunk runs against: a chunk whose claims ended in a crash, a failed run or
 * an engine outage CHUNK_MAX_ATTEMPTS times is not sent to the real engine again. Every remaining request fails at
 * once as `chunk_failed` (attempts 0) and goes through the ordinary runner, so it is committed,
 * fenced and counted like any other error line and the batch can still finish.
 */
export function poisonEngine(engine: EngineClient, failures: number): EngineClient {
  const message = `The request was not run: its chunk failed ${failures} times (a crash, a failed run or an engine outage each time), so it was given up on.`;
  return {
    send: async () => {
      throw new EngineRequestError("chunk_failed", message, 0);
    },
    models: (signal) => engine.models(signal),
    close: async () => {},
  };
}

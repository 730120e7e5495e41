import { keys, markStatusWritten, putObject, staleStatusObjects, startLoop, type Loop } from "@barge/core";
import type { ApiDeps } from "../deps.js";
import { presentBatch } from "../present.js";
import { findBatch } from "../store/batches.js";

const ROUND = 20;

/**
 * Keeps each serverless batch's `results/<path>/status.json` equal to its Batch object (the JSON
 * of GET /v1/batches/{id}), rewritten whenever the batch's timeline grew: when it was accepted,
 * validated (or failed), started finalizing and reached its final state. What was written is
 * remembered per object, so a restart rewrites only what is behind.
 */
export function startStatusWriter(deps: ApiDeps): Loop {
  return startLoop("status-writer", deps.log, deps.config.API_POLL_MS, async () => {
    const stale = await staleStatusObjects(deps.db, ROUND);
    for (const s of stale) {
      const row = await findBatch(deps.db, s.tenant, s.batchId);
      if (row?.results_prefix) {
        await putObject(deps, keys.status(row.results_prefix), JSON.stringify(await presentBatch(deps, row), null, 2), "application/json");
      }
      await markStatusWritten(deps.db, s);
    }
    return stale.length === ROUND;
  });
}

import { claimLandedObject, RateLimited, settleLandedObject, startLoop, storableText, type Loop } from "@barge/core";
import type { ApiDeps } from "../deps.js";
import { acceptObject } from "./accept-object.js";

/**
 * Starts the batches of landed objects in the background, one claimed row at a time (every API
 * replica may run this), so an event push is answered before anything is read. A row that keeps
 * failing is settled `failed` once VALIDATION_MAX_ATTEMPTS claims were spent on it, so nothing
 * is retried forever; a deployment at its batch limits (429) keeps the row waiting, unsettled,
 * until there is room. `started` is told of each new batch (the validator and the status writer).
 */
export function startAcceptor(deps: ApiDeps, started: () => void): Loop {
  return startLoop("acceptor", deps.log, deps.config.API_POLL_MS, async () => {
    const o = await claimLandedObject(deps.db, { leaseSeconds: deps.config.LEASE_SECONDS });
    if (!o) return false;
    try {
      const accepted = await acceptObject(deps, o);
      if (accepted.outcome === "batch") {
        deps.log.info({ key: o.key, batch: accepted.batchId }, "landed object started a batch");
        started();
      }
      if (accepted.outcome === "refused") deps.log.warn({ key: o.key, error: accepted.error }, "landed object refused");
    } catch (err) {
      if (o.attempts >= deps.config.VALIDATION_MAX_ATTEMPTS && !(err instanceof RateLimited)) {
        const error = storableText(err instanceof Error ? err.message : String(err), 1024);
        await settleLandedObject(deps.db, { bucket: o.bucket, key: o.key, etag: o.etag, outcome: "failed", batchId: null, error });
        deps.log.error({ err, key: o.key }, "landed object failed on its last attempt");
      } else {
        deps.log.warn({ err, key: o.key, attempts: o.attempts }, "landed object not accepted yet; retrying after its claim lapses");
      }
    }
    return true;
  });
}

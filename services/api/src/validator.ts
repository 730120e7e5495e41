import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { claimBatchWork, LeaseLost, startLoop, validateBatch, type Loop } from "@barge/core";
import type { ApiDeps } from "./deps.js";

/**
 * Validates batches in the background: claims one `validating` batch at a time (a lease, so
 * every API replica can run this safely) and streams its input through core's validator.
 */
export function startValidator(deps: ApiDeps): Loop {
  const workerId = `api-${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const validateDeps = {
    db: deps.db,
    s3: deps.s3,
    bucket: deps.bucket,
    log: deps.log,
    leaseSeconds: deps.config.LEASE_SECONDS,
    maxAttempts: deps.config.VALIDATION_MAX_ATTEMPTS,
    limits: {
      chunkSize: deps.config.CHUNK_SIZE,
      maxRequests: deps.config.MAX_REQUESTS_PER_BATCH,
      maxBytes: deps.config.MAX_FILE_BYTES,
      maxLineBytes: deps.config.MAX_LINE_BYTES,
    },
  };
  return startLoop("validator", deps.log, deps.config.API_POLL_MS, async () => {
    const batch = await claimBatchWork(deps.db, { workerId, kinds: ["validating"], leaseSeconds: deps.config.LEASE_SECONDS });
    if (!batch) return false;
    try {
      await validateBatch(validateDeps, batch);
    } catch (err) {
      // The lease lapses and the batch is claimed again later; a lost lease means it was cancelled or taken over.
      if (err instanceof LeaseLost) deps.log.info({ batch: batch.id }, "validation superseded");
      else deps.log.error({ err, batch: batch.id }, "validation failed; will retry after the lease lapses");
    }
    return true;
  });
}

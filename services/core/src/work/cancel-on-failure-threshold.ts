import type { Transaction } from "kysely";
import type { BatchRow, Database } from "../db/schema.js";
import { failureThresholdError } from "../domain/failure-threshold.js";
import { cancelBatch } from "../queue/cancel-batch.js";
import { failureThresholdCrossed } from "../queue/failure-threshold-crossed.js";
import { recordBatchEvent } from "../queue/record-batch-event.js";

/**
 * Cancels a running batch whose committed failure rate crossed its threshold, inside the
 * transaction that commits the results which crossed it: the cancel, its reason and the
 * `failure_threshold` timeline entry land with them or not at all. The batch's runners learn of
 * it at their next heartbeat, as of any cancel, and its partial results are published.
 */
export async function cancelOnFailureThreshold(tx: Transaction<Database>, batchId: string): Promise<BatchRow | undefined> {
  const crossed = await failureThresholdCrossed(tx, batchId);
  if (!crossed) return undefined;
  // Undefined when a concurrent commit or the user cancelled it first: one entry, one reason.
  const cancelled = await cancelBatch(tx, batchId, failureThresholdError(crossed));
  if (cancelled) await recordBatchEvent(tx, batchId, "failure_threshold", { done: crossed.done, failed: crossed.failed, rate: crossed.failed / crossed.done });
  return cancelled;
}

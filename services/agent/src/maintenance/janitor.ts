import { deleteObjects, deleteSegments, findLeftoverSegments, keys, listKeyPages, type Bucket, type Db } from "@barge/core";

/** Final batches the janitor cleans up per tick. */
const SWEEP_BATCHES = 10;

/**
 * Deletes everything under a final batch's segments prefix, committed segments and the orphans
 * of fenced-out commits alike, and only then its segment rows: while a row is left, the janitor
 * knows the batch still needs this, so a crash anywhere here is finished by the next sweep.
 */
export async function removeSegments(deps: Bucket & { db: Db }, batchId: string): Promise<number> {
  let removed = 0;
  // Deleting while listing is fine: each page's continuation token is past what it returned.
  for await (const found of listKeyPages(deps, keys.segmentsPrefix(batchId))) {
    await deleteObjects(deps, found);
    removed += found.length;
  }
  await deleteSegments(deps.db, batchId);
  return removed;
}

/** Finishes the segment cleanup of final batches whose finalizer died after publishing them. */
export async function sweepLeftoverSegments(deps: Bucket & { db: Db }): Promise<string[]> {
  const batches = await findLeftoverSegments(deps.db, SWEEP_BATCHES);
  for (const batchId of batches) await removeSegments(deps, batchId);
  return batches;
}

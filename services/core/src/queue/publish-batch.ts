import type { Db } from "../db/connect.js";
import type { NewFile } from "../db/schema.js";
import type { BatchStatus, PublishedBatchStatus } from "../domain/batch-state.js";
import { forgetOutputParts } from "./forget-output-parts.js";
import { transitionBatch } from "./transition-batch.js";

/** What a finalizer publishes: the stitched results' file rows and keys, and the final status. */
export interface BatchPublication {
  batchId: string;
  /** The finalizer's batch lease token (`worker_fence`). */
  fence: number;
  from: BatchStatus;
  to: PublishedBatchStatus;
  /** The result files' rows, with ids derived from the batch's so a re-run inserts the same ones. */
  files: NewFile[];
  outputFileId: string;
  errorFileId: string | null;
  outputKey: string;
  errorKey: string | null;
}

/** Thrown inside the transaction so the file rows roll back with a fenced move that matched nothing. */
class NotMoved extends Error {}

/**
 * Publishes a stitched batch in one transaction: inserts its result file rows (a row already
 * there from a crashed run is kept), moves it to its final status pointing at them, and drops its
 * output part records, which describe an upload that is now completed or aborted. Why one
 * transaction: a finalizer that lost the batch publishes nothing, not even the file rows. The
 * move fires the `batch_reached_final_state` trigger (see `FINAL_STATE_SIDE_EFFECTS` in
 * domain/batch-state.ts), which also sets these files' `expires_at`. False when the fence or
 * the expected status no longer matched.
 */
export async function publishBatch(db: Db, p: BatchPublication): Promise<boolean> {
  try {
    await db.transaction().execute(async (tx) => {
      await tx.insertInto("files").values(p.files).onConflict((oc) => oc.column("id").doNothing()).execute();
      const moved = await transitionBatch(tx, {
        batchId: p.batchId,
        fence: p.fence,
        from: [p.from],
        to: p.to,
        set: { output_file_id: p.outputFileId, error_file_id: p.errorFileId, output_key: p.outputKey, error_key: p.errorKey },
      });
      if (!moved) throw new NotMoved();
      await forgetOutputParts(tx, p.batchId);
    });
    return true;
  } catch (err) {
    if (err instanceof NotMoved) return false;
    throw err;
  }
}

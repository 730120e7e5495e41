import type { Db } from "../db/connect.js";

/**
 * Records that a batch's status.json now covers its timeline up to `seq`. Why `status_seq < seq`:
 * two replicas may rewrite the same status.json; the mark only ever moves forward, and a final
 * state closes the row so it leaves the writer's index.
 */
export async function markStatusWritten(db: Db, s: { batchId: string; seq: number; final: boolean }): Promise<void> {
  await db
    .updateTable("s3_objects")
    .set({ status_seq: s.seq, status_final: s.final })
    .where("batch_id", "=", s.batchId)
    .where("status_seq", "<", s.seq)
    .execute();
}

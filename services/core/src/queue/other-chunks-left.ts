import type { Db } from "../db/connect.js";

/**
 * How many chunks of a batch, other than `idx`, are not `done`. Why: zero means the completion
 * of `idx` is the batch's last, the one that moves it to finalizing.
 */
export async function otherChunksLeft(db: Db, ref: { batchId: string; idx: number }): Promise<number> {
  const left = await db
    .selectFrom("chunks")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("batch_id", "=", ref.batchId)
    .where("idx", "<>", ref.idx)
    .where("status", "<>", "done")
    .executeTakeFirstOrThrow();
  return Number(left.n);
}

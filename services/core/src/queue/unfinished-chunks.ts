import type { Db } from "../db/connect.js";
import type { ChunkRow } from "../db/schema.js";

/**
 * The chunks of a batch with requests no run committed, in chunk order. Why by checkpoint and
 * not status: an expired batch's chunks are sealed first, so status no longer says what is left.
 */
export async function unfinishedChunks(db: Db, batchId: string): Promise<ChunkRow[]> {
  return db.selectFrom("chunks").selectAll().where("batch_id", "=", batchId).whereRef("committed", "<", "request_count").orderBy("idx").execute();
}

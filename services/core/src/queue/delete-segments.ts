import { sql } from "kysely";
import type { Db } from "../db/connect.js";
import { affectedRows } from "./affected.js";

/**
 * Drops a batch's segment rows. Why only after its objects are deleted: a row left behind is how
 * the janitor knows the batch still has objects to delete, so a crash in between is finished later.
 */
export async function deleteSegments(db: Db, batchId: string): Promise<number> {
  const r = await sql`DELETE FROM segments WHERE batch_id = ${batchId}`.execute(db);
  return affectedRows(r);
}

import { cancelBatch, type BatchRow, type BatchStatus, type Db } from "@barge/core";

/** The columns a new batch row needs. */
export interface NewBatchRow {
  id: string;
  tenant: string;
  endpoint: string;
  model: string | null;
  input_file_id: string;
  completion_window: string;
  metadata: Record<string, string> | null;
  priority: number;
  created_at: Date;
  expires_at: Date;
}

/** Inserts a batch in `validating` and returns it. */
export function insertBatch(db: Db, b: NewBatchRow): Promise<BatchRow> {
  // The repo's convention for the json columns: JSON null, not SQL NULL (both read back as null).
  return db
    .insertInto("batches")
    .values({
      ...b,
      status: "validating",
      metadata: JSON.stringify(b.metadata),
      errors: JSON.stringify(null),
      stitch_state: JSON.stringify(null),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** A batch of the tenant. */
export function findBatch(db: Db, tenant: string, id: string): Promise<BatchRow | undefined> {
  return db.selectFrom("batches").selectAll().where("id", "=", id).where("tenant", "=", tenant).executeTakeFirst();
}

/** One page of the tenant's batches, newest first (ids are time-ordered), after a cursor. */
export async function listBatches(
  db: Db,
  tenant: string,
  q: { after?: string | undefined; limit: number; status?: BatchStatus | undefined },
): Promise<{ rows: BatchRow[]; hasMore: boolean }> {
  let query = db.selectFrom("batches").selectAll().where("tenant", "=", tenant);
  if (q.after) query = query.where("id", "<", q.after);
  if (q.status) query = query.where("status", "=", q.status);
  const rows = await query.orderBy("id", "desc").limit(q.limit + 1).execute();
  return { rows: rows.slice(0, q.limit), hasMore: rows.length > q.limit };
}

/** Starts cancelling a batch (core's statement, in its own transaction); undefined if it was no longer cancellable. */
export function cancelBatchRow(db: Db, id: string): Promise<BatchRow | undefined> {
  return db.transaction().execute((tx) => cancelBatch(tx, id));
}

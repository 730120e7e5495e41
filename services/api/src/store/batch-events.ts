import type { Db } from "@barge/core";

/** One timeline entry as the logs route reads it. */
export interface BatchEventRow {
  seq: number;
  kind: string;
  data: Record<string, unknown>;
  created_at: Date;
}

/**
 * One page of a batch's timeline, oldest first, after the entry numbered `after`. Why by seq:
 * it is the table's key after the batch id, so a page is one index range however long the log.
 */
export async function listBatchEvents(
  db: Db,
  batchId: string,
  q: { after?: number | undefined; limit: number },
): Promise<{ rows: BatchEventRow[]; hasMore: boolean }> {
  let query = db.selectFrom("batch_events").select(["seq", "kind", "data", "created_at"]).where("batch_id", "=", batchId);
  if (q.after !== undefined) query = query.where("seq", ">", String(q.after));
  const rows = await query.orderBy("seq").limit(q.limit + 1).execute();
  return {
    rows: rows.slice(0, q.limit).map((r) => ({ seq: Number(r.seq), kind: r.kind, data: r.data, created_at: new Date(r.created_at) })),
    hasMore: rows.length > q.limit,
  };
}

import type { Db, RequestErrorRow } from "@barge/core";

/** One page of a batch's failed requests in input order, after the one whose custom_id is `after`. */
export async function listRequestErrors(
  db: Db,
  batchId: string,
  q: { after?: string | undefined; limit: number },
): Promise<{ rows: RequestErrorRow[]; hasMore: boolean }> {
  let query = db.selectFrom("request_errors").selectAll().where("batch_id", "=", batchId);
  if (q.after !== undefined) {
    const after = q.after;
    query = query.where("request_index", ">", (eb) =>
      eb.selectFrom("request_errors").select("request_index").where("batch_id", "=", batchId).where("custom_id", "=", after),
    );
  }
  const rows = await query.orderBy("request_index").limit(q.limit + 1).execute();
  return { rows: rows.slice(0, q.limit), hasMore: rows.length > q.limit };
}

/** Whether a batch has any failed request. */
export async function hasRequestErrors(db: Db, batchId: string): Promise<boolean> {
  const row = await db.selectFrom("request_errors").select("request_index").where("batch_id", "=", batchId).limit(1).executeTakeFirst();
  return row !== undefined;
}

/** The chunks of a batch that hold failed requests, in input order, with where their input lies. */
export function chunksWithErrors(db: Db, batchId: string) {
  return db
    .selectFrom("chunks")
    .select(["idx", "request_start", "request_count", "start_offset", "end_offset", "start_line"])
    .where("batch_id", "=", batchId)
    .where("failed", ">", 0)
    .orderBy("idx")
    .execute();
}

/** The sorted indexes of the failed requests in [from, to): at most one chunk's worth. */
export async function failedIndexes(db: Db, batchId: string, from: number, to: number): Promise<number[]> {
  const rows = await db
    .selectFrom("request_errors")
    .select("request_index")
    .where("batch_id", "=", batchId)
    .where("request_index", ">=", from)
    .where("request_index", "<", to)
    .orderBy("request_index")
    .execute();
  return rows.map((r) => r.request_index);
}

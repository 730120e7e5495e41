import { ACTIVE_BATCH_STATUSES, Conflict, NotFound, type Db, type FilePurpose, type FileRow, type InputCheck, type NewFile } from "@barge/core";

/** Batch states that still read their input file: every active one. */
const RUNNING = ACTIVE_BATCH_STATUSES;

export type { NewFile };

/** Inserts a file row and returns it. */
export function insertFile(db: Db, f: NewFile): Promise<FileRow> {
  return db.insertInto("files").values(f).returningAll().executeTakeFirstOrThrow();
}

/** A file of the tenant in any state, pending uploads included. */
export function findFile(db: Db, tenant: string, id: string): Promise<FileRow | undefined> {
  return db.selectFrom("files").selectAll().where("id", "=", id).where("tenant", "=", tenant).executeTakeFirst();
}

/** A file the tenant can see: pending uploads do not exist yet. */
export async function findVisibleFile(db: Db, tenant: string, id: string): Promise<FileRow | undefined> {
  const f = await findFile(db, tenant, id);
  return f && f.status !== "pending" ? f : undefined;
}

/**
 * Locks a visible file against deletion until the transaction ends (FOR SHARE), so a batch
 * created concurrently with a delete either sees the file gone or blocks the delete.
 */
export function lockFileForUse(tx: Db, tenant: string, id: string): Promise<FileRow | undefined> {
  return visibleFile(tx, tenant, id).forShare().executeTakeFirst();
}

/** The select of one of the tenant's files that is visible (uploaded, not a pending presign). */
function visibleFile(db: Db, tenant: string, id: string) {
  return db.selectFrom("files").selectAll().where("id", "=", id).where("tenant", "=", tenant).where("status", "<>", "pending");
}

/** One page of the tenant's visible files, by id (time) in either direction, after a cursor. */
export async function listFiles(
  db: Db,
  tenant: string,
  q: { purpose?: string | undefined; after?: string | undefined; limit: number; order: "asc" | "desc" },
): Promise<{ rows: FileRow[]; hasMore: boolean }> {
  let query = db.selectFrom("files").selectAll().where("tenant", "=", tenant).where("status", "<>", "pending");
  if (q.purpose) query = query.where("purpose", "=", q.purpose as FilePurpose);
  if (q.after) query = query.where("id", q.order === "desc" ? "<" : ">", q.after);
  const rows = await query.orderBy("id", q.order).limit(q.limit + 1).execute();
  return { rows: rows.slice(0, q.limit), hasMore: rows.length > q.limit };
}

/**
 * Deletes a visible file's row unless a running batch still reads it (409), returning the row
 * so the caller can delete its object. The row lock serialises this with batch creation.
 */
export function deleteFileRow(db: Db, tenant: string, id: string): Promise<FileRow> {
  return db.transaction().execute(async (tx) => {
    const file = await visibleFile(tx, tenant, id).forUpdate().executeTakeFirst();
    if (!file) throw new NotFound("file", id, "file_id");
    const user = await tx
      .selectFrom("batches")
      .select(["id", "status"])
      .where("input_file_id", "=", id)
      .where("status", "in", RUNNING)
      .executeTakeFirst();
    if (user) throw new Conflict(`File '${id}' is the input of batch '${user.id}', which is ${user.status}; cancel it or wait for it to finish.`, "file_in_use");
    await tx.deleteFrom("files").where("id", "=", id).execute();
    return file;
  });
}

/**
 * Moves a pending upload to its final state, with the record of its upload check when it passed
 * and (`stored`) the key and ETag of the object it now names.
 * Guarded on `pending`, so it does nothing (undefined) when the sweeper deleted the row or another
 * completion got there first.
 */
export function settlePendingFile(
  db: Db,
  id: string,
  set: { status: "processed" | "error"; bytes: number; inputCheck?: InputCheck | null; stored?: { key: string; etag: string } },
): Promise<FileRow | undefined> {
  return db
    .updateTable("files")
    .set({
      status: set.status,
      bytes: set.bytes,
      input_check: set.inputCheck ? JSON.stringify(set.inputCheck) : null,
      upload_expires_at: null,
      ...(set.stored ? { s3_key: set.stored.key, etag: set.stored.etag } : {}),
    })
    .where("id", "=", id)
    .where("status", "=", "pending")
    .returningAll()
    .executeTakeFirst();
}

/** Deletes up to `limit` pending uploads whose presigned URL has lapsed, returning their keys. */
export async function deleteExpiredPending(db: Db, now: Date, limit: number): Promise<string[]> {
  const rows = await db
    .deleteFrom("files")
    .where("id", "in", (eb) =>
      eb.selectFrom("files").select("id").where("status", "=", "pending").where("upload_expires_at", "<", now).limit(limit),
    )
    .where("status", "=", "pending")
    .returning("s3_key")
    .execute();
  return rows.map((r) => r.s3_key);
}

/**
 * Deletes up to `limit` files whose `expires_after` has passed, returning their keys. The input
 * of a batch still running is kept until the batch is done (a batch being created holds its
 * file FOR SHARE, which SKIP LOCKED steps around); a batch whose output expired stops pointing
 * at the deleted objects, as OpenAI's does once its files are gone.
 */
export function deleteExpiredFiles(db: Db, now: Date, limit: number): Promise<string[]> {
  return db.transaction().execute(async (tx) => {
    const rows = await tx
      .deleteFrom("files")
      .where("id", "in", (eb) =>
        eb
          .selectFrom("files as f")
          .select("f.id")
          .where("f.expires_at", "<", now)
          .where("f.status", "<>", "pending")
          .where(({ not, exists, selectFrom }) =>
            not(exists(selectFrom("batches as b").select("b.id").whereRef("b.input_file_id", "=", "f.id").where("b.status", "in", RUNNING))),
          )
          .orderBy("f.expires_at")
          .limit(limit)
          .forUpdate()
          .skipLocked(),
      )
      .returning(["id", "s3_key"])
      .execute();
    const ids = rows.map((r) => r.id);
    if (ids.length > 0) {
      await tx.updateTable("batches").set({ output_key: null }).where("output_file_id", "in", ids).execute();
      await tx.updateTable("batches").set({ error_key: null }).where("error_file_id", "in", ids).execute();
    }
    return rows.map((r) => r.s3_key);
  });
}

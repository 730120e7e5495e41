import { sql } from "kysely";
import { Conflict, type Db, type FileRow, type UploadPartRow, type UploadRow } from "@barge/core";
import type { NewFile } from "./files.js";

/** Where a part is staged until `complete` joins the chosen parts into the file. */
export function partKey(tenant: string, uploadId: string, partNumber: number): string {
  return `uploads/${tenant}/${uploadId}/${String(partNumber).padStart(5, "0")}.part`;
}

/** The columns a new upload row needs. */
export interface NewUpload {
  id: string;
  tenant: string;
  filename: string;
  purpose: "batch";
  mime_type: string;
  bytes: number;
  created_at: Date;
  expires_at: Date;
  file_expires_after_seconds: number | null;
}

/** Inserts a pending upload and returns it. */
export function insertUpload(db: Db, u: NewUpload): Promise<UploadRow> {
  return db.insertInto("uploads").values({ ...u, status: "pending" }).returningAll().executeTakeFirstOrThrow();
}

/** An upload of the tenant, with the file it produced, if any. */
export async function findUpload(db: Db, tenant: string, id: string): Promise<{ upload: UploadRow; file: FileRow | null } | undefined> {
  const upload = await db.selectFrom("uploads").selectAll().where("id", "=", id).where("tenant", "=", tenant).executeTakeFirst();
  if (!upload) return undefined;
  const file = upload.file_id ? await db.selectFrom("files").selectAll().where("id", "=", upload.file_id).executeTakeFirst() : undefined;
  return { upload, file: file ?? null };
}

/**
 * Takes the next part number of a pending, unexpired upload, with the bytes its recorded parts
 * leave of the declared size, or undefined when the upload is not (or no longer) pending. One
 * UPDATE: parts arriving in parallel each get their own number.
 */
export async function startPart(db: Db, tenant: string, uploadId: string, now: Date): Promise<{ partNumber: number; remaining: number } | undefined> {
  const row = await db
    .updateTable("uploads")
    .set((eb) => ({ parts_started: eb("parts_started", "+", 1) }))
    .where("id", "=", uploadId)
    .where("tenant", "=", tenant)
    .where("status", "=", "pending")
    .where("expires_at", ">", now)
    .returning(["parts_started", sql<number>`bytes - ${recordedBytes(sql.ref("uploads.id"))}`.as("remaining")])
    .executeTakeFirst();
  return row ? { partNumber: row.parts_started, remaining: Number(row.remaining) } : undefined;
}

/** The bytes of an upload's recorded parts, as an int8 the client parses to a number. */
const recordedBytes = (uploadId: unknown) => sql<number>`(select coalesce(sum(bytes), 0)::int8 from upload_parts where upload_id = ${uploadId})`;

/**
 * Records a staged part, unless its upload stopped being pending while the part streamed in
 * (completed, cancelled, expired: "not_pending"), or the part would take the recorded parts past
 * the declared bytes ("too_large"); then the caller must delete the staged object. The FOR
 * UPDATE lock orders parts recorded in parallel, so their sum is checked against one another,
 * and orders this against `finishUpload` and `endUpload`.
 */
export function recordPart(db: Db, part: Omit<UploadPartRow, "created_at">): Promise<UploadPartRow | "not_pending" | "too_large"> {
  return db.transaction().execute(async (tx) => {
    const upload = await tx.selectFrom("uploads").select(["status", "bytes"]).where("id", "=", part.upload_id).forUpdate().executeTakeFirst();
    if (upload?.status !== "pending") return "not_pending";
    const { recorded } = await tx.selectNoFrom(recordedBytes(part.upload_id).as("recorded")).executeTakeFirstOrThrow();
    if (Number(recorded) + part.bytes > upload.bytes) return "too_large";
    return tx.insertInto("upload_parts").values(part).returningAll().executeTakeFirstOrThrow();
  });
}

/**
 * The named parts of an upload, in the order asked for, and the first id it does not have. The
 * ids go as one array parameter: a list of placeholders would overflow pg's bind limit.
 */
export async function partsInOrder(db: Db, uploadId: string, partIds: string[]): Promise<{ parts: UploadPartRow[]; unknown: string | undefined }> {
  const rows = await db
    .selectFrom("upload_parts")
    .selectAll()
    .where("upload_id", "=", uploadId)
    .where(sql<boolean>`id = any(${partIds}::text[])`)
    .execute();
  const byId = new Map(rows.map((r) => [r.id, r]));
  const unknown = partIds.find((id) => !byId.has(id));
  return { parts: partIds.flatMap((id) => byId.get(id) ?? []), unknown };
}

/**
 * Publishes a completed upload: its file row and the `completed` state in one transaction,
 * guarded on `pending`, so of two racing completes (or a complete racing a cancel or the
 * sweeper) exactly one wins. Returns the staged keys to delete, or throws 409 for the loser.
 */
export function finishUpload(db: Db, uploadId: string, file: NewFile): Promise<{ file: FileRow; stagedKeys: string[] }> {
  return db.transaction().execute(async (tx) => {
    const upload = await tx.selectFrom("uploads").select("status").where("id", "=", uploadId).forUpdate().executeTakeFirst();
    if (upload?.status !== "pending") throw new Conflict(`Upload '${uploadId}' is ${upload?.status ?? "gone"} and cannot be completed.`, "invalid_upload_status");
    const row = await tx.insertInto("files").values(file).returningAll().executeTakeFirstOrThrow();
    await tx.updateTable("uploads").set({ status: "completed", file_id: row.id }).where("id", "=", uploadId).execute();
    return { file: row, stagedKeys: await takeParts(tx, uploadId) };
  });
}

/**
 * Moves a pending upload to `cancelled` or `expired` and forgets its parts, returning the staged
 * keys to delete; undefined when it was not pending.
 */
export function endUpload(db: Db, uploadId: string, status: "cancelled" | "expired"): Promise<{ upload: UploadRow; stagedKeys: string[] } | undefined> {
  return db.transaction().execute(async (tx) => {
    const upload = await tx
      .updateTable("uploads")
      .set({ status })
      .where("id", "=", uploadId)
      .where("status", "=", "pending")
      .returningAll()
      .executeTakeFirst();
    if (!upload) return undefined;
    return { upload, stagedKeys: await takeParts(tx, uploadId) };
  });
}

/** Ids of up to `limit` pending uploads whose hour is up. */
export async function expiredUploadIds(db: Db, now: Date, limit: number): Promise<string[]> {
  const rows = await db.selectFrom("uploads").select("id").where("status", "=", "pending").where("expires_at", "<=", now).limit(limit).execute();
  return rows.map((r) => r.id);
}

async function takeParts(tx: Db, uploadId: string): Promise<string[]> {
  const rows = await tx.deleteFrom("upload_parts").where("upload_id", "=", uploadId).returning("s3_key").execute();
  return rows.map((r) => r.s3_key);
}

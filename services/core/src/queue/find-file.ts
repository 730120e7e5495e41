import type { Db } from "../db/connect.js";
import type { FileRow } from "../db/schema.js";

/**
 * A file row by id, whatever its tenant. Why unscoped: only workers call this, for the input
 * file a batch already names; tenant checks happen where a request names a file.
 */
export async function findFile(db: Db, fileId: string): Promise<FileRow | undefined> {
  return db.selectFrom("files").selectAll().where("id", "=", fileId).executeTakeFirst();
}

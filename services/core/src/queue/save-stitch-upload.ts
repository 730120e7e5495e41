import { sql } from "kysely";
import type { Db } from "../db/connect.js";
import { affectedOne } from "./affected.js";

/**
 * Remembers the multipart upload a finalizer just started for one output (`output`, `errors`)
 * in `batches.stitch_state`, before any part is sent, so a finalizer that crashes mid-stitch is
 * resumed (or its upload aborted) by the next one. Fenced on `worker_fence`: a finalizer whose
 * batch lease was taken over must stop before uploading anything. The CASE treats SQL NULL and a
 * JSON `null` alike, since `'null'::jsonb || object` would make an array.
 */
export async function saveStitchUpload(
  db: Db,
  args: { batchId: string; fence: number; name: string; uploadId: string },
): Promise<boolean> {
  const r = await sql`
    UPDATE batches
    SET stitch_state = CASE WHEN jsonb_typeof(stitch_state) = 'object' THEN stitch_state ELSE '{}'::jsonb END
                       || jsonb_build_object(${args.name}::text, ${args.uploadId}::text)
    WHERE id = ${args.batchId} AND worker_fence = ${args.fence}
  `.execute(db);
  return affectedOne(r);
}

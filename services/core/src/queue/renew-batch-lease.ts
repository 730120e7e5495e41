import { sql } from "kysely";
import type { Db } from "../db/connect.js";
import { affectedOne } from "./affected.js";

/** Extends a batch-level work lease; false means another worker took the batch over. */
export async function renewBatchLease(
  db: Db,
  args: { batchId: string; fence: number; leaseSeconds: number },
): Promise<boolean> {
  const r = await sql`
    UPDATE batches
    SET worker_lease_expires_at = now() + make_interval(secs => ${args.leaseSeconds})
    WHERE id = ${args.batchId} AND worker_fence = ${args.fence}
  `.execute(db);
  return affectedOne(r);
}

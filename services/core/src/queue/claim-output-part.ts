import { sql } from "kysely";
import type { Db } from "../db/connect.js";

export interface OutputPartClaim {
  batchId: string;
  first: number;
  last: number;
  partNumber: number;
  bytes: number;
  /** First chunks of parts this one absorbs (a too-small run merged into the part after it). */
  replaces: number[];
}

/**
 * Claims chunks `first..last` as one output part, before its bytes are uploaded, dropping the
 * parts it absorbs. Why claimed first: run under the batch row lock (lockBatchOutputParts), the
 * claim is what makes the next agent see these chunks as covered while this one uploads.
 */
export async function claimOutputPart(db: Db, c: OutputPartClaim): Promise<void> {
  await sql`
    WITH absorbed AS (
      DELETE FROM output_parts WHERE batch_id = ${c.batchId} AND first_chunk = ANY(${c.replaces}::int[])
    )
    INSERT INTO output_parts (batch_id, first_chunk, last_chunk, part_number, bytes)
    VALUES (${c.batchId}, ${c.first}, ${c.last}, ${c.partNumber}, ${c.bytes})
    ON CONFLICT (batch_id, first_chunk) DO UPDATE
    SET last_chunk = EXCLUDED.last_chunk, part_number = EXCLUDED.part_number, bytes = EXCLUDED.bytes,
        upload_id = NULL, etag = NULL, source_digest = NULL, uploaded_at = NULL, created_at = now()
  `.execute(db);
}

import { sql } from "kysely";
import type { Db } from "../db/connect.js";

export interface OutputPart {
  batchId: string;
  first: number;
  last: number;
  uploadId: string;
  partNumber: number;
  etag: string;
  bytes: number;
  sourceDigest: string;
}

/**
 * Records an uploaded output part (a claimed run, or one the finalizer rebuilt). Why through the
 * batch row, locked FOR SHARE: a row is only worth keeping while that upload is still the batch's
 * and the batch unpublished; the lock queues this behind a finalizer's publishing transaction
 * (which deletes the rows), and the re-checked WHERE then skips the insert instead of leaving a
 * row behind. A rebuilt part replaces the earlier record starting at its chunk. The same statement
 * writes the part's `output_part_uploaded` timeline entry, so only a kept record gets one.
 */
export async function recordOutputPart(db: Db, p: OutputPart): Promise<boolean> {
  const { rows } = await sql<{ part_number: number }>`
    WITH recorded AS (
      INSERT INTO output_parts (batch_id, first_chunk, last_chunk, part_number, bytes, upload_id, etag, source_digest, uploaded_at)
      SELECT b.id, ${p.first}, ${p.last}, ${p.partNumber}, ${p.bytes}, ${p.uploadId}, ${p.etag}, ${p.sourceDigest}, now()
      FROM batches b
      WHERE b.id = ${p.batchId} AND b.output_upload_id = ${p.uploadId} AND b.status IN ('in_progress', 'finalizing', 'cancelling')
      FOR SHARE
      ON CONFLICT (batch_id, first_chunk) DO UPDATE
      SET last_chunk = EXCLUDED.last_chunk, part_number = EXCLUDED.part_number, bytes = EXCLUDED.bytes,
          upload_id = EXCLUDED.upload_id, etag = EXCLUDED.etag, source_digest = EXCLUDED.source_digest, uploaded_at = now()
      RETURNING batch_id, first_chunk, last_chunk, part_number, bytes
    ), events AS (
      INSERT INTO batch_events (batch_id, kind, data)
      SELECT batch_id, 'output_part_uploaded',
             jsonb_build_object('part', part_number, 'chunks', last_chunk - first_chunk + 1, 'first_chunk', first_chunk, 'bytes', bytes)
      FROM recorded
    )
    SELECT part_number FROM recorded
  `.execute(db);
  return rows.length === 1;
}

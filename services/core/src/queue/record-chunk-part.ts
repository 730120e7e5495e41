import { sql } from "kysely";
import type { Db } from "../db/connect.js";

export interface ChunkPart {
  batchId: string;
  idx: number;
  uploadId: string;
  partNumber: number;
  etag: string;
  bytes: number;
  sourceDigest: string;
}

/**
 * Records the part a chunk's output was uploaded as. Why through the batch row, locked FOR SHARE:
 * a row is only worth keeping while that upload is still the batch's and the batch unpublished;
 * the lock queues this behind a finalizer's publishing transaction (which deletes the rows), and
 * the re-checked WHERE then skips the insert instead of leaving a row behind. A rebuilt part
 * replaces the earlier record of its chunk.
 */
export async function recordChunkPart(db: Db, p: ChunkPart): Promise<boolean> {
  const r = await sql`
    INSERT INTO chunk_parts (batch_id, chunk_idx, upload_id, part_number, etag, bytes, source_digest)
    SELECT b.id, ${p.idx}, ${p.uploadId}, ${p.partNumber}, ${p.etag}, ${p.bytes}, ${p.sourceDigest}
    FROM batches b
    WHERE b.id = ${p.batchId} AND b.output_upload_id = ${p.uploadId} AND b.status IN ('in_progress', 'finalizing', 'cancelling')
    FOR SHARE
    ON CONFLICT (batch_id, chunk_idx) DO UPDATE
    SET upload_id = EXCLUDED.upload_id, part_number = EXCLUDED.part_number, etag = EXCLUDED.etag,
        bytes = EXCLUDED.bytes, source_digest = EXCLUDED.source_digest, created_at = now()
  `.execute(db);
  return Number(r.numAffectedRows ?? 0) === 1;
}

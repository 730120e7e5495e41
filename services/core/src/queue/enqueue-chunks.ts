import type { Transaction } from "kysely";
import type { BatchRow, Database } from "../db/schema.js";
import type { ChunkIndexEntry } from "../domain/validate.js";

/**
 * Inserts one queued chunk per chunk-index entry. Runs in the same transaction as the fenced
 * `validating -> in_progress` transition, so a batch is never runnable with half its chunks.
 */
export async function enqueueChunks(
  tx: Transaction<Database>,
  batch: Pick<BatchRow, "id" | "tenant" | "priority" | "created_at" | "expires_at">,
  model: string,
  chunks: ChunkIndexEntry[],
): Promise<void> {
  // Postgres caps bind parameters at 65535; 500 rows x 13 columns stays well below.
  for (let i = 0; i < chunks.length; i += 500) {
    await tx
      .insertInto("chunks")
      .values(
        chunks.slice(i, i + 500).map((c) => ({
          batch_id: batch.id,
          idx: c.idx,
          model,
          tenant: batch.tenant,
          expires_at: batch.expires_at,
          priority: batch.priority,
          batch_created_at: batch.created_at,
          request_start: c.requestStart,
          request_count: c.requestCount,
          start_line: c.startLine,
          start_offset: c.startOffset,
          end_offset: c.endOffset,
          next_offset: c.startOffset,
          next_line: c.startLine,
        })),
      )
      .execute();
  }
}

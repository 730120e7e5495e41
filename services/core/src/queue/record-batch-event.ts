import type { Kysely, Transaction } from "kysely";
import type { Database } from "../db/schema.js";
import type { BatchEventKind } from "../domain/batch-events.js";

/**
 * Appends one entry to a batch's timeline. Why it takes the caller's transaction: the entry is
 * written with the change it records, so a rolled-back move leaves no entry behind.
 */
export async function recordBatchEvent(
  tx: Transaction<Database> | Kysely<Database>,
  batchId: string,
  kind: BatchEventKind,
  data: Record<string, unknown> = {},
): Promise<void> {
  await tx.insertInto("batch_events").values({ batch_id: batchId, kind, data: JSON.stringify(data) }).execute();
}

import { sql } from "kysely";
import type { Db } from "../db/connect.js";

export interface BatchOutputState {
  tenant: string;
  status: string;
  outputUploadId: string | null;
  resultsPrefix: string | null;
}

/**
 * Locks a batch's row for the rest of the transaction and reads what choosing an output part
 * needs. Why a row lock: agents completing neighbouring chunks at the same moment must decide
 * their runs one after the other, each seeing the other's claim, or two parts could cover one
 * chunk (or neither). NO KEY UPDATE, so segment inserts (a key-share lock through their foreign
 * key) of the batch's running chunks never wait on it.
 */
export async function lockBatchOutputParts(db: Db, batchId: string): Promise<BatchOutputState | undefined> {
  const r = await sql<{ tenant: string; status: string; output_upload_id: string | null; results_prefix: string | null }>`
    SELECT tenant, status, output_upload_id, results_prefix FROM batches WHERE id = ${batchId} FOR NO KEY UPDATE
  `.execute(db);
  const row = r.rows[0];
  return row ? { tenant: row.tenant, status: row.status, outputUploadId: row.output_upload_id, resultsPrefix: row.results_prefix } : undefined;
}

import type { Transaction } from "kysely";
import type { Database } from "../db/schema.js";
import { storableText } from "../domain/storable-text.js";

/** One failed request of a segment being committed. */
export interface RequestErrorEntry {
  requestIndex: number;
  customId: string;
  line: number;
  code: string;
  message: string;
  statusCode: number | null;
  attempts: number;
}

/**
 * Records the failed requests of a segment for `GET /v1/batches/{id}/errors` and retries. Runs
 * after the fenced checkpoint advance in the same transaction, so a row exists exactly when its
 * error line is committed; the primary key (batch, request index) rejects a second copy outright.
 * The custom id and message come from outside (an input line, the engine): made storable here, so
 * a NUL in either cannot make the commit fail forever. The error file keeps them as they were.
 */
export async function recordRequestErrors(
  tx: Transaction<Database>,
  batchId: string,
  chunkIdx: number,
  errors: readonly RequestErrorEntry[],
): Promise<void> {
  // Postgres caps bind parameters at 65535; 1000 rows x 9 columns stays well below.
  for (let i = 0; i < errors.length; i += 1000) {
    await tx
      .insertInto("request_errors")
      .values(
        errors.slice(i, i + 1000).map((e) => ({
          batch_id: batchId,
          request_index: e.requestIndex,
          chunk_idx: chunkIdx,
          custom_id: storableText(e.customId),
          line: e.line,
          code: e.code,
          message: storableText(e.message),
          status_code: e.statusCode,
          attempts: e.attempts,
        })),
      )
      .execute();
  }
}

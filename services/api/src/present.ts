import { batchProgress, emptyProgress, presignGet, toOpenAIBatch, type BatchRow, type OpenAIBatch } from "@barge/core";
import type { ApiDeps } from "./deps.js";

/** OpenAI's list envelope for one page of a cursor listing. */
export function listPage<T extends { id: string }>(data: T[], hasMore: boolean) {
  return {
    object: "list" as const,
    data,
    first_id: data[0]?.id ?? null,
    last_id: data[data.length - 1]?.id ?? null,
    has_more: hasMore,
  };
}

/** Batch objects for rows, with committed progress and, once results exist, where to read them. */
export async function presentBatches(deps: ApiDeps, rows: BatchRow[]): Promise<OpenAIBatch[]> {
  const progress = await batchProgress(deps.db, rows.map((r) => r.id));
  return Promise.all(
    rows.map(async (b) => {
      return toOpenAIBatch(b, progress.get(b.id) ?? emptyProgress, {
        output_location: b.output_key ? { bucket: deps.bucket, key: b.output_key, errors_key: b.error_key } : null,
        results_url: b.output_key ? await presignGet(deps, b.output_key, deps.config.PRESIGN_EXPIRES_SECONDS) : null,
      });
    }),
  );
}

/** The Batch object for one row. */
export async function presentBatch(deps: ApiDeps, row: BatchRow): Promise<OpenAIBatch> {
  const [batch] = await presentBatches(deps, [row]);
  return batch!;
}

import { batchProgress, emptyProgress, presignGet, toOpenAIBatch, type BatchProgress, type BatchRow, type Db, type OpenAIBatch } from "@barge/core";
import type { ApiDeps } from "./deps.js";
import { estimateBatch, type RecordedThroughput } from "./estimate.js";
import type { BatchView } from "./store/batches.js";

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

/** Batch objects for rows, with committed progress, estimates and, once results exist, where to read them. */
export async function presentBatches(deps: ApiDeps, rows: BatchRow[]): Promise<OpenAIBatch[]> {
  const [progress, recorded] = await Promise.all([
    batchProgress(deps.db, rows.map((r) => r.id)),
    recordedThroughput(deps.db, rows.map((r) => r.model)),
  ]);
  const now = new Date();
  return Promise.all(
    rows.map((b) => presentWith(deps, b, progress.get(b.id) ?? emptyProgress, b.model === null ? undefined : recorded.get(b.model)?.requests_per_sec, now)),
  );
}

/** The Batch object for a row whose progress and recorded speed were read with it (one statement). */
export function presentBatchView(deps: ApiDeps, v: BatchView): Promise<OpenAIBatch> {
  return presentWith(deps, v.row, v.progress, v.requestsPerSec, new Date());
}

async function presentWith(deps: ApiDeps, b: BatchRow, p: BatchProgress, requestsPerSec: number | undefined, now: Date): Promise<OpenAIBatch> {
  const batch = toOpenAIBatch(b, p, {
    output_location: b.output_key ? { bucket: deps.bucket, key: b.output_key, errors_key: b.error_key } : null,
    results_url: b.output_key ? await presignGet(deps, b.output_key, deps.config.PRESIGN_EXPIRES_SECONDS) : null,
    ...estimateBatch(b, p, requestsPerSec === undefined ? undefined : { requests_per_sec: requestsPerSec }, now),
  });
  // The batch whose failed requests this one re-runs (POST /v1/batches/{id}/retry).
  return { ...batch, retry_of: b.retry_of };
}

/** The Batch object for one row. */
export async function presentBatch(deps: ApiDeps, row: BatchRow): Promise<OpenAIBatch> {
  const [batch] = await presentBatches(deps, [row]);
  return batch!;
}

async function recordedThroughput(db: Db, models: (string | null)[]): Promise<Map<string, RecordedThroughput>> {
  const wanted = [...new Set(models.filter((m): m is string => m !== null))];
  if (wanted.length === 0) return new Map();
  const rows = await db.selectFrom("model_throughput").select(["model", "requests_per_sec"]).where("model", "in", wanted).execute();
  return new Map(rows.map((r) => [r.model, r]));
}

import type { BatchProgress, BatchRow } from "@barge/core";

/** Rates of a model's past batches (the `model_throughput` table). */
export interface RecordedThroughput {
  requests_per_sec: number;
}

/** A batch's speed and expected completion, as shown in the Batch object's extension fields. */
export interface BatchEstimate {
  throughput_tokens_per_sec: number | null;
  estimated_completion: number | null;
}

/**
 * Throughput since the batch started (input plus output tokens, so embeddings count too), and,
 * while it runs, when it should finish: from its own observed request rate once some requests are
 * done, before that from the recorded rate of past batches of its model (none recorded: unknown).
 * The run ends when its last chunk is done or it is cancelled or expired, so a finished batch keeps
 * the speed it ran at.
 */
export function estimateBatch(b: BatchRow, p: BatchProgress, recorded: RecordedThroughput | undefined, now: Date): BatchEstimate {
  if (!b.in_progress_at) return { throughput_tokens_per_sec: null, estimated_completion: null };
  const end = b.finalizing_at ?? b.cancelling_at ?? b.expired_at ?? now;
  const seconds = (end.getTime() - b.in_progress_at.getTime()) / 1000;
  const tokens = p.promptTokens + p.completionTokens;
  const throughput = seconds > 0 ? Math.round((tokens / seconds) * 10) / 10 : null;
  if (b.status !== "in_progress") return { throughput_tokens_per_sec: throughput, estimated_completion: null };

  const done = p.completed + p.failed;
  const remaining = Math.max(0, b.total_requests - done);
  const rate = done > 0 && seconds > 0 ? done / seconds : recorded?.requests_per_sec;
  const nowSeconds = now.getTime() / 1000;
  const eta = remaining === 0 ? nowSeconds : rate && rate > 0 ? nowSeconds + remaining / rate : null;
  return { throughput_tokens_per_sec: throughput, estimated_completion: eta === null ? null : Math.ceil(eta) };
}

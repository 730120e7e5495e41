import { setTimeout as sleep } from "node:timers/promises";
import { isFinal, type Batch, type BargeClient } from "../client.js";
import { createBatchProgress } from "../progress.js";

export interface SubmitOptions {
  file: string;
  endpoint: string;
  metadata?: Record<string, string>;
  wait: boolean;
  /** Where to download the results; only with `wait`. */
  out?: string;
  pollMs?: number;
  print?: (line: string) => void;
}

/**
 * `barge submit`: presigned upload, batch creation, and optionally a live wait ending with the
 * results downloaded. Resolves with the batch as last seen.
 */
export async function submit(client: BargeClient, o: SubmitOptions): Promise<Batch> {
  const print = o.print ?? ((l: string) => console.log(l));
  const file = await client.uploadPresigned(o.file);
  print(`uploaded ${o.file} as ${file.id} (${file.bytes} bytes, presigned PUT)`);
  let batch = await client.createBatch({ input_file_id: file.id, endpoint: o.endpoint, ...(o.metadata ? { metadata: o.metadata } : {}) });
  print(`created ${batch.id} (${batch.status})`);
  if (!o.wait) return batch;

  batch = await waitForBatch(client, batch.id, o.pollMs ?? 500);
  print(`${batch.id} ${batch.status}: ${batch.request_counts.completed} completed, ${batch.request_counts.failed} failed of ${batch.request_counts.total}`);
  if (batch.errors) for (const e of batch.errors.data) print(`  line ${e.line ?? "-"}: ${e.code}: ${e.message}`);
  if (o.out && batch.output_file_id) {
    await client.downloadFile(batch.output_file_id, o.out);
    print(`results downloaded to ${o.out}`);
  }
  if (batch.output_location) {
    print(`result object: s3://${batch.output_location.bucket}/${batch.output_location.key}`);
    if (batch.output_location.errors_key) print(`error object:  s3://${batch.output_location.bucket}/${batch.output_location.errors_key}`);
  }
  if (batch.results_url) print(`presigned GET: ${batch.results_url}`);
  return batch;
}

/** Polls a batch until it is final, drawing a progress bar. */
export async function waitForBatch(client: BargeClient, id: string, pollMs: number): Promise<Batch> {
  const bar = createBatchProgress();
  try {
    for (;;) {
      const b = await client.getBatch(id);
      bar.update(b);
      if (isFinal(b.status)) return b;
      await sleep(pollMs);
    }
  } finally {
    bar.stop();
  }
}

/** The S3 key layout. Users read `outputKey` with any S3 client, so it is part of the API. */
export const keys = {
  input: (tenant: string, fileId: string) => `inputs/${tenant}/${fileId}.jsonl`,
  /**
   * Where a presigned PUT writes: one key per upload, never the file's `input` key, so a URL still
   * valid after `complete` can only write an object nothing reads. Complete copies it to `input`.
   */
  staging: (tenant: string, fileId: string) => `staging/${tenant}/${fileId}.jsonl`,
  /**
   * The writer's fence is in the name so a stale worker can never overwrite a committed segment:
   * a chunk runner's lease token, or `w<worker_fence>` for the lines a finalizer writes itself.
   */
  segment: (batchId: string, kind: "output" | "error", chunk: number, seq: number, fence: number | string) =>
    `batches/${batchId}/parts/${String(chunk).padStart(6, "0")}-${String(seq).padStart(6, "0")}.${fence}.${kind}.jsonl`,
  /** Everything a batch's runs wrote, committed or orphaned; deleted once the batch is final. */
  segmentsPrefix: (batchId: string) => `batches/${batchId}/`,
  /** A batch's results; a serverless batch's `results_prefix` (`results/<path>/`) replaces `outputs/<tenant>/<batch>/`. */
  output: (tenant: string, batchId: string, resultsPrefix?: string | null) => `${resultsDir(tenant, batchId, resultsPrefix)}output.jsonl`,
  errors: (tenant: string, batchId: string, resultsPrefix?: string | null) => `${resultsDir(tenant, batchId, resultsPrefix)}errors.jsonl`,
  manifest: (tenant: string, batchId: string, resultsPrefix?: string | null) => `${resultsDir(tenant, batchId, resultsPrefix)}manifest.json`,
  /** The Batch object of a serverless batch, for users who have only S3. */
  status: (resultsPrefix: string) => `${resultsPrefix}status.json`,
};

function resultsDir(tenant: string, batchId: string, resultsPrefix: string | null | undefined): string {
  return resultsPrefix ?? `outputs/${tenant}/${batchId}/`;
}

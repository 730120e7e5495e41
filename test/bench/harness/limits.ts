/** Validation limits raised above the defaults (200,000 requests, 500 MB) for benchmark-sized batches. */
export const BENCH_LIMITS: Record<string, string> = {
  MAX_REQUESTS_PER_BATCH: "2000000",
  MAX_FILE_BYTES: String(2 * 1024 ** 3),
};

import { HeadBucketCommand } from "@aws-sdk/client-s3";
import type { Bucket } from "./objects.js";

/**
 * Whether the bucket answers a HeadBucket within `timeoutMs`: the readiness probe's S3 check.
 * Cheap on every S3 (no listing, no body); the deadline covers the client's own retries, so a
 * server that is down answers false in time instead of after every backoff.
 */
export async function bucketReachable(b: Bucket, timeoutMs: number): Promise<boolean> {
  try {
    await b.s3.send(new HeadBucketCommand({ Bucket: b.bucket }), { abortSignal: AbortSignal.timeout(timeoutMs) });
    return true;
  } catch {
    return false;
  }
}

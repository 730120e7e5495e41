import { CreateBucketCommand, HeadBucketCommand, ListObjectsV2Command, type BucketLocationConstraint } from "@aws-sdk/client-s3";
import type { CheckResult } from "../preflight.js";
import type { Bucket } from "./objects.js";
import { s3OutageReason } from "./s3-errors.js";

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

/**
 * The start-up check of the bucket: an empty listing, since unlike HeadBucket its answer carries
 * S3's error code (NoSuchBucket, InvalidAccessKeyId, SignatureDoesNotMatch) to name what is wrong.
 * A missing bucket is created only when `create` says so (S3_CREATE_BUCKET): otherwise a typo in
 * S3_BUCKET would quietly start an empty deployment. An unreachable server is worth a retry;
 * a missing bucket or refused credentials are settings, and stay wrong until someone fixes them.
 */
export async function checkBucket(b: Bucket & { region: string }, opts: { create: boolean; timeoutMs: number }): Promise<CheckResult> {
  // Under a prefix Barge never writes, the answer is empty on any bucket (s3rver fails a listing
  // cut short by MaxKeys with a 500), yet still checked for existence and signature.
  const list = () =>
    b.s3.send(new ListObjectsV2Command({ Bucket: b.bucket, Prefix: CHECK_PREFIX, MaxKeys: 1 }), { abortSignal: AbortSignal.timeout(opts.timeoutMs) });
  try {
    await list();
    return { ok: true };
  } catch (err) {
    const name = (err as { name?: string }).name;
    if (name === "NoSuchBucket" && opts.create) return createBucket(b, opts.timeoutMs);
    if (name === "NoSuchBucket") {
      return { ok: false, retry: false, reason: `the S3 bucket '${b.bucket}' does not exist (NoSuchBucket): create it, or set S3_CREATE_BUCKET=true to let Barge create it` };
    }
    return bucketFailure(err);
  }
}

const CHECK_PREFIX = ".barge-start-up-check/";

async function createBucket(b: Bucket & { region: string }, timeoutMs: number): Promise<CheckResult> {
  try {
    await b.s3.send(
      new CreateBucketCommand({
        Bucket: b.bucket,
        // Outside us-east-1, AWS wants the region spelled out again.
        ...(b.region === "us-east-1" ? {} : { CreateBucketConfiguration: { LocationConstraint: b.region as BucketLocationConstraint } }),
      }),
      { abortSignal: AbortSignal.timeout(timeoutMs) },
    );
    return { ok: true, note: `created the S3 bucket '${b.bucket}' (S3_CREATE_BUCKET=true)` };
  } catch (err) {
    const name = (err as { name?: string }).name;
    // Another replica starting at the same moment made it first.
    if (name === "BucketAlreadyOwnedByYou") return { ok: true };
    if (name === "BucketAlreadyExists") return { ok: false, retry: false, reason: `the S3 bucket name '${b.bucket}' is taken by another account (BucketAlreadyExists): choose another S3_BUCKET` };
    return bucketFailure(err);
  }
}

/** Outages are retried; refusals of the settings are not. */
function bucketFailure(err: unknown): CheckResult {
  const name = (err as { name?: string }).name;
  if (name === "AbortError" || name === "TimeoutError") return { ok: false, retry: true, reason: "S3 did not answer in time" };
  const reason = s3OutageReason(err);
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (reason === undefined) return { ok: false, retry: false, reason: `S3 refused the bucket check: ${err instanceof Error ? err.message || err.name : String(err)}` };
  return { ok: false, retry: status === undefined || status >= 500, reason };
}

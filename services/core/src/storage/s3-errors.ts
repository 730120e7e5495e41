// How Barge reads S3's failures. Servers differ in how they say "I lack this operation" or "that
// upload is gone", and the callers' choice (fall back, resume, retry, give up) hangs on the reading.

/** The fields of an SDK error that classification looks at. */
export interface ErrorShape {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

function shape(err: unknown): ErrorShape {
  return typeof err === "object" && err !== null ? (err as ErrorShape) : {};
}

/** An answer meaning "this server lacks the operation", as opposed to a real failure of it. */
export function isUnsupported(err: unknown): boolean {
  const { name, $metadata } = shape(err);
  const status = $metadata?.httpStatusCode;
  if (name === "NotImplemented" || name === "MethodNotAllowed" || status === 501) return true;
  return status !== undefined && status >= 400 && status < 500 && ![401, 403, 404].includes(status);
}

/** The upload id names no upload (anymore): aborted, completed, or never there. */
export function isMissingUpload(err: unknown): boolean {
  const { name } = shape(err);
  // RGW 16 answers NoSuchKey for an aborted or unknown upload id.
  return name === "NoSuchUpload" || name === "NoSuchKey";
}

/** An S3 answer in the 4xx range: this request will not succeed by repeating it. */
export function isRefusal(err: unknown): boolean {
  const status = shape(err).$metadata?.httpStatusCode;
  return status !== undefined && status >= 400 && status < 500;
}

/** A failure worth repeating the request for: a 5xx, a request timeout, or a dropped connection. */
export function isTransient(err: unknown): boolean {
  const { name, code, $metadata } = shape(err);
  const status = $metadata?.httpStatusCode;
  if (status !== undefined) return status >= 500 || name === "RequestTimeout";
  return name === "TimeoutError" || ["ECONNRESET", "EPIPE", "ETIMEDOUT", "ECONNREFUSED"].includes(code ?? "");
}

/** An object answered with another ETag than the one asked for, on a server that did not refuse it with 412 itself. */
export class PreconditionFailed extends Error {
  constructor(key: string, wanted: string, got: string | undefined) {
    super(`object ${key} has ETag ${got ?? "(none)"}, not ${wanted}`);
    this.name = "PreconditionFailed";
  }
}

/** S3 refused a conditional request (If-Match, x-amz-copy-source-if-match), or `PreconditionFailed`: the object is not the one named. */
export function isPreconditionFailed(err: unknown): boolean {
  const { name, $metadata } = shape(err);
  return name === "PreconditionFailed" || $metadata?.httpStatusCode === 412;
}

/** S3 refused a byte range that starts past the object's end (416 InvalidRange). */
export function isInvalidRange(err: unknown): boolean {
  const { name, $metadata } = shape(err);
  return name === "InvalidRange" || $metadata?.httpStatusCode === 416;
}

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);

/**
 * Why S3 failed Barge itself, when the failure is an outage or a setting and no fault of the
 * request: a missing bucket, refused credentials, a server out of reach or failing. Undefined
 * for anything else. Only errors from the S3 client count (they carry `$metadata`), so a
 * Postgres connection refused is never taken for S3's. The reason names no address or key.
 */
export function s3OutageReason(err: unknown): string | undefined {
  const { name, code, $metadata } = shape(err);
  if ($metadata === undefined) return undefined;
  const status = $metadata.httpStatusCode;
  if (name === "NoSuchBucket") {
    const bucket = (err as { BucketName?: unknown }).BucketName;
    return `the S3 bucket${typeof bucket === "string" ? ` '${bucket}'` : ""} does not exist (NoSuchBucket)`;
  }
  if (name === "InvalidAccessKeyId") return "S3 does not know the access key Barge signs with (InvalidAccessKeyId): check S3_ACCESS_KEY_ID";
  if (name === "SignatureDoesNotMatch") return "S3 refused the request signature (SignatureDoesNotMatch): check S3_SECRET_ACCESS_KEY";
  if (name === "AccessDenied" || status === 403) return `S3 denied Barge access to the bucket (${name === "AccessDenied" ? "AccessDenied" : "HTTP 403"}): check the credentials and their permissions`;
  if (status === undefined && NETWORK_CODES.has(code ?? "")) return `S3 is unreachable (${code})`;
  if (status === undefined && name === "TimeoutError") return "S3 did not answer in time";
  if (status !== undefined && status >= 500) return `S3 is failing (HTTP ${status}${name ? ` ${name}` : ""})`;
  return undefined;
}

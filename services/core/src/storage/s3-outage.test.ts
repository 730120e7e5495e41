import { describe, expect, it } from "vitest";
import { s3OutageReason } from "./s3-errors.js";

// Error shapes as the AWS SDK throws them (recorded from s3rver, the signature-verifying embedded S3 and a closed port).
const sdk = (name: string, status: number | undefined, extra: Record<string, unknown> = {}) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status, attempts: 1 }, ...extra });

describe("s3OutageReason", () => {
  it("names a missing bucket, refused credentials, an unreachable or failing server", () => {
    expect(s3OutageReason(sdk("NoSuchBucket", 404, { BucketName: "b" }))).toBe("the S3 bucket 'b' does not exist (NoSuchBucket)");
    expect(s3OutageReason(sdk("InvalidAccessKeyId", 403))).toBe("S3 does not know the access key Barge signs with (InvalidAccessKeyId): check S3_ACCESS_KEY_ID");
    expect(s3OutageReason(sdk("SignatureDoesNotMatch", 403))).toBe("S3 refused the request signature (SignatureDoesNotMatch): check S3_SECRET_ACCESS_KEY");
    expect(s3OutageReason(sdk("AccessDenied", 403))).toBe("S3 denied Barge access to the bucket (AccessDenied): check the credentials and their permissions");
    expect(s3OutageReason(sdk("Unknown", 403))).toBe("S3 denied Barge access to the bucket (HTTP 403): check the credentials and their permissions");
    expect(s3OutageReason(Object.assign(sdk("Error", undefined), { code: "ECONNREFUSED" }))).toBe("S3 is unreachable (ECONNREFUSED)");
    expect(s3OutageReason(sdk("ServiceUnavailable", 503))).toBe("S3 is failing (HTTP 503 ServiceUnavailable)");
  });

  it("leaves the request's own failures and Postgres's alone", () => {
    expect(s3OutageReason(sdk("NoSuchKey", 404))).toBeUndefined();
    expect(s3OutageReason(sdk("NotFound", 404))).toBeUndefined();
    expect(s3OutageReason(sdk("PreconditionFailed", 412))).toBeUndefined();
    // pg's connection refused carries the same code, but no $metadata.
    expect(s3OutageReason(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }))).toBeUndefined();
    expect(s3OutageReason(undefined)).toBeUndefined();
  });
});

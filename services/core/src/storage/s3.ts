import { S3Client } from "@aws-sdk/client-s3";

/** Connection settings for one S3-compatible endpoint. */
export interface S3Settings {
  endpoint?: string | undefined;
  region: string;
  /** Both unset: the AWS SDK's default credential chain. */
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
  forcePathStyle: boolean;
}

/** Builds an S3 client that works on AWS, MinIO, Ceph RGW and s3rver alike. */
export function createS3Client(s: S3Settings): S3Client {
  return new S3Client({
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    region: s.region,
    ...(s.accessKeyId !== undefined || s.secretAccessKey !== undefined
      ? { credentials: { accessKeyId: s.accessKeyId ?? "", secretAccessKey: s.secretAccessKey ?? "" } }
      : {}),
    forcePathStyle: s.forcePathStyle,
    // Flexible checksums stream bodies as aws-chunked with a trailer; Ceph RGW 16 and
    // older MinIO answer 411 MissingContentLength, so only checksum where S3 demands it.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 5,
  });
}

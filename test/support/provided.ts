/** Which S3 implementation a project's suites talk to. */
export type S3Kind = "s3rver" | "rgw" | "external";

/** The S3 server a project's global setup started or found, as `inject("s3")` returns it. */
export interface S3Info {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /**
   * s3rver: in-process and lenient (no UploadPartCopy, no size rules); rgw: Ceph RGW started by
   * `infra/rgw/rgw.sh`; external: whatever the environment names (MinIO, AWS, ...).
   */
  kind: S3Kind;
  /** A bucket that already exists there, for suites that read `S3_BUCKET` from the environment. */
  bucket: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string;
    s3: S3Info;
  }
}

import { inject } from "vitest";

/**
 * Setup file of the `s3-conformance` project: suites that pick their S3 server from the
 * environment (the stitcher's own tests in `services/core`) see this project's real S3 server.
 * On s3rver nothing is set, so they run only their s3rver part, as in the `main` project.
 */
const s3 = inject("s3");
if (s3.kind !== "s3rver") {
  Object.assign(process.env, {
    S3_ENDPOINT: s3.endpoint,
    S3_REGION: s3.region,
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    S3_BUCKET: s3.bucket,
    S3_FORCE_PATH_STYLE: "true",
  });
}

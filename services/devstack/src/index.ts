// Public API of @barge/devstack: the embedded stack and the pieces tests and benchmarks share.
// Private to the repository: the CLI's `dev` and `demo`, the test suites and the bench use it;
// no production process does.
export { startStack, type Stack, type StackOptions } from "./stack.js";
export { startEmbeddedPostgres, type EmbeddedPg } from "./postgres.js";
export { startEmbeddedS3, type EmbeddedS3 } from "./s3.js";
export { startSupervisedS3, type SupervisedS3, type SupervisorLog, type Backoff } from "./s3-supervisor.js";
export { loadOrCreateS3Credentials, readS3Credentials, s3CredentialsFile, type S3Credentials } from "./s3-credentials.js";
export { freePort } from "./ports.js";
export { processAlive } from "./processes.js";
export { StackStartError, describeError } from "./start-failure.js";
export { mulberry32 } from "./prng.js";
export { leaveSignalsToCaller } from "./postgres.js";

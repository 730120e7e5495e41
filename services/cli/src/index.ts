export { startStack, type Stack, type StackOptions } from "./stack/stack.js";
export { startEmbeddedPostgres, type EmbeddedPg } from "./stack/postgres.js";
export { startEmbeddedS3, type EmbeddedS3 } from "./stack/s3.js";
export { BargeClient, ApiError, isFinal, type Batch } from "./client.js";
export { submit, waitForBatch } from "./commands/submit.js";

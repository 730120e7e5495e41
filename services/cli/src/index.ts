// Public API of @barge/cli.
export { BargeClient, ApiError, isFinal, type Batch } from "./client.js";
export { submit, waitForBatch } from "./commands/submit.js";

// Internals the test suites check directly (`@barge/api/testing`): the OpenAI object shapes.
export { batchObject, fileDeletedObject, fileObject, listObject, modelListObject, uploadObject, uploadPartObject } from "./objects.js";
// The one error handler, so a suite can hand it a real Postgres error no route lets through any more.
export { errorHandler } from "./errors.js";
// Serverless mode's parts without the HTTP server, so a suite can hand the trigger objects itself.
export { startServerless } from "./trigger/serverless.js";
// The S3 trigger's acceptor step, so a suite can accept a landed object itself (tenant quotas).
export { acceptObject } from "./trigger/accept-object.js";
// How a tenant key is stored, so a suite can insert keys into `api_keys` as the admin route does.
export { keyHash } from "./store/api-keys.js";

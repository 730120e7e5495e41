export { createApp } from "./app.js";
export { startApi, type ApiServer } from "./server.js";
export { startBackground, type Background } from "./background.js";
export { sweepExpiredFiles, sweepExpiredOpenAIUploads, sweepExpiredUploads, sweepStaleMultipartUploads } from "./sweeper.js";
export type { ApiDeps } from "./deps.js";
export { deliverWebhooks } from "./webhooks/deliver.js";
export { findTenantSettings, type TenantSettings } from "./store/tenants.js";

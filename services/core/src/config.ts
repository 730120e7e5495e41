import { z } from "zod";
import { tenantName } from "./domain/tenant-limits.js";

const bool = z
  .union([z.boolean(), z.enum(["true", "false", "1", "0"])])
  .transform((v) => v === true || v === "true" || v === "1");
const int = (def: number) => z.coerce.number().int().nonnegative().default(def);

/**
 * Every setting Barge reads, by its env name. The README's config table, docker-compose.yml
 * and the embedded stack use exactly these names.
 */
export const configSchema = z.object({
  DATABASE_URL: z.string().url().optional(),
  /** Postgres schema holding Barge's tables, so one database can host several deployments. */
  DATABASE_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]*$/).default("public"),
  S3_ENDPOINT: z.string().url().optional(),
  S3_REGION: z.string().default("us-east-1"),
  S3_BUCKET: z.string().min(3).default("barge"),
  /**
   * Unset, the AWS SDK's default credential chain applies (instance role, profile, env). No dev
   * server's key is a default: the embedded stack passes s3rver's own.
   */
  S3_ACCESS_KEY_ID: z.string().optional(),
  S3_SECRET_ACCESS_KEY: z.string().optional(),
  S3_FORCE_PATH_STYLE: bool.default(true),
  /** At start, create S3_BUCKET if it does not exist; off, a missing bucket stops start-up with its name (a typo never starts an empty deployment). */
  S3_CREATE_BUCKET: bool.default(false),
  /** Base URL of the OpenAI-compatible engine (vLLM) beside this agent. */
  VLLM_URL: z.string().url().optional(),
  API_HOST: z.string().default("127.0.0.1"),
  API_PORT: int(4080),
  /** Where clients reach the API (used by the CLI). */
  BARGE_API_URL: z.string().url().default("http://127.0.0.1:4080"),
  BARGE_API_KEY: z.string().optional(),
  /** Authorizes the admin routes (`/v1/admin/*`: keys, tenants, usage); set, the API is never open. */
  BARGE_ADMIN_KEY: z.string().min(16).optional(),
  /** Lets the API bind a non-loopback API_HOST with neither BARGE_API_KEY nor BARGE_ADMIN_KEY set: only on a network where every client is trusted. */
  BARGE_TRUSTED_NETWORK: bool.default(false),
  BARGE_DATA_DIR: z.string().default(".barge"),
  BARGE_TENANT: tenantName.default("default"),
  CHUNK_SIZE: z.coerce.number().int().min(1).default(5000),
  SEGMENT_MAX_LINES: z.coerce.number().int().min(1).default(1000),
  SEGMENT_MAX_MS: z.coerce.number().int().min(50).default(2000),
  LEASE_SECONDS: z.coerce.number().int().min(2).default(30),
  AGENT_ID: z.string().optional(),
  /** In-flight engine requests an agent starts with; the adaptive limit moves from there. */
  AGENT_CONCURRENCY: z.coerce.number().int().min(1).default(64),
  /** Floor of the adaptive concurrency limit. */
  AGENT_MIN_CONCURRENCY: z.coerce.number().int().min(1).default(1),
  /**
   * Ceiling of the adaptive concurrency limit. Unset, it is 1024 (or AGENT_CONCURRENCY, if that is
   * higher): enough for a 256-slot vLLM plus its queue with no tuning.
   */
  AGENT_MAX_CONCURRENCY: z.coerce.number().int().min(1).optional(),
  /** How often the agent reads the engine's /metrics to size its concurrency. */
  AGENT_METRICS_POLL_MS: z.coerce.number().int().min(50).default(250),
  /** Port of the agent's own Prometheus endpoint (GET /metrics); unset or 0, there is none. */
  AGENT_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  /** Address the agent's metrics endpoint binds. */
  AGENT_METRICS_HOST: z.string().min(1).default("127.0.0.1"),
  AGENT_POLL_MS: z.coerce.number().int().min(10).default(500),
  /** How long the API's validator and webhook loops idle when they find no work. */
  API_POLL_MS: z.coerce.number().int().min(10).default(500),
  /**
   * When set, the agent starts and supervises its engine itself: an argv template (split on
   * whitespace, no shell) with `{model}` and `{port}`, e.g. `vllm serve {model} --port {port}`.
   */
  ENGINE_COMMAND: z.string().min(1).optional(),
  /** Port the ENGINE_COMMAND engine listens on; the agent talks to 127.0.0.1 on it. */
  ENGINE_PORT: z.coerce.number().int().min(1).max(65535).default(8000),
  /** The model an ENGINE_COMMAND engine loads first when no work waits; unset, the agent waits for work. */
  ENGINE_MODEL: z.string().min(1).optional(),
  /** An idle ENGINE_COMMAND agent swaps to another model once that model's oldest waiting batch is this old. */
  ENGINE_SWAP_AFTER_SECONDS: int(60),
  ENGINE_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(5),
  ENGINE_TIMEOUT_MS: z.coerce.number().int().min(100).default(600_000),
  /** Claims of one chunk that may end in a crash, a failed run or an engine outage before its remaining requests fail as `chunk_failed`. */
  CHUNK_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(5),
  /** Claims a `validating` batch may spend validating (each one failed or cut short) before it fails as `validation_failed`. */
  VALIDATION_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(5),
  /** Claims of a batch to finalize it after which a permanent Postgres error (SQLSTATE class 22 or 23) fails it as `finalize_failed`. */
  FINALIZE_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(5),
  /** How long a SIGTERMed agent lets in-flight requests finish before it aborts them, commits and releases. */
  AGENT_SHUTDOWN_GRACE_MS: int(10_000),
  /** Requests one batch input may hold; the default is the seeds' (vllm-batch-server's) limit. */
  MAX_REQUESTS_PER_BATCH: z.coerce.number().int().min(1).default(200_000),
  /** Bytes one uploaded file may hold; the default is the seeds' 500 MB. */
  MAX_FILE_BYTES: z.coerce.number().int().min(1).default(500 * 1024 * 1024),
  /** The longest request line, in bytes without its newline; longer lines are `line_too_large` and never read whole. */
  MAX_LINE_BYTES: z.coerce.number().int().min(1024).default(16 * 1024 * 1024),
  PRESIGN_EXPIRES_SECONDS: z.coerce.number().int().min(1).max(604800).default(3600),
  /** Batches not yet finished (validating to cancelling), across tenants; more gets 429. */
  MAX_ACTIVE_BATCHES: z.coerce.number().int().min(1).default(1000),
  /** Requests enqueued and not yet run, across batches; a create at or over it gets 429. */
  MAX_QUEUED_REQUESTS: z.coerce.number().int().min(1).default(10_000_000),
  /** Per tenant, unless the admin sets the tenant's own (`PUT /v1/admin/tenants/{tenant}`): batch creates a minute (GCRA, bursts up to it). */
  TENANT_BATCH_CREATES_PER_MINUTE: z.coerce.number().int().min(1).default(10),
  /** Per tenant: file creates a minute (`POST /v1/files`, presign, uploads, the one-shot form). */
  TENANT_FILE_UPLOADS_PER_MINUTE: z.coerce.number().int().min(1).default(20),
  /** Per tenant: batch creates a UTC day; unset, unlimited. */
  TENANT_BATCHES_PER_DAY: z.coerce.number().int().min(1).optional(),
  /** Per tenant: batches not yet finished; unset, only MAX_ACTIVE_BATCHES applies. */
  TENANT_MAX_ACTIVE_BATCHES: z.coerce.number().int().min(1).optional(),
  /** Per tenant: requests enqueued and not yet run; unset, only MAX_QUEUED_REQUESTS applies. */
  TENANT_MAX_QUEUED_REQUESTS: z.coerce.number().int().min(1).optional(),
  /** Per tenant: the highest `priority` a batch may ask for; unset, 1000 (no cap). */
  TENANT_MAX_PRIORITY: z.coerce.number().int().min(-1000).max(1000).optional(),
  /** Endpoints every batch's final-state events go to, comma-separated. */
  WEBHOOK_URLS: z
    .string()
    .default("")
    .transform((s) => s.split(",").map((u) => u.trim()).filter((u) => u !== ""))
    .pipe(z.array(z.url({ protocol: /^https?$/ }))),
  /** Standard Webhooks signing secret (`whsec_` + base64 of 24 to 64 bytes); webhooks need it. */
  WEBHOOK_SECRET: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, "must be whsec_ followed by base64")
    .refine((s) => {
      const n = Buffer.from(s.slice(6), "base64").length;
      return n >= 24 && n <= 64;
    }, "the base64 part must decode to 24 to 64 bytes")
    .optional(),
  /**
   * Lets a batch's own `webhook_url` reach loopback, private and link-local addresses. Off by
   * default: any API key holder sets that URL, and the API POSTs from inside the network.
   */
  WEBHOOK_ALLOW_PRIVATE: bool.default(false),
  /** Delivery attempts per webhook event and endpoint before it is given up. */
  WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(10),
  /**
   * Shared secret of `POST /v1/s3-events`, sent as `Authorization: Bearer` or `?token=` (RGW's push
   * endpoint cannot set headers). Unset, the route is off (404): an event endpoint is never open.
   */
  S3_EVENTS_TOKEN: z.string().min(16).optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /**
   * How far V8 may grow the old generation past the live data after each full GC, in percent, for
   * the API and agent processes; 0 leaves V8's own heuristic (up to 4x live).
   */
  HEAP_GROWING_PERCENT: z.coerce.number().int().min(0).max(300).default(50),
  /**
   * API and agent: collect V8's young generation after this many MiB of a streamed S3 object have
   * been read (input validation, chunk reads), so its socket buffers are freed; 0 turns it off.
   */
  RECLAIM_BUFFERS_MIB: z.coerce.number().int().min(0).max(1024).default(2),
  /**
   * An upload's request body (POST /v1/files, upload parts) that receives no bytes for this long
   * is aborted with 408, and so is its S3 multipart upload. There is no limit on the total time.
   * A JSON body that stalls this long gets the same 408.
   */
  UPLOAD_IDLE_TIMEOUT_SECONDS: z.coerce.number().positive().default(60),
  /** The API's sweeper aborts S3 multipart uploads under the upload prefixes left open this long (by a crash). */
  UPLOAD_STALE_MULTIPART_HOURS: z.coerce.number().positive().default(24),
  /** How long a client may take to send a request's headers; the API's guard against slowloris. */
  API_HEADERS_TIMEOUT_SECONDS: z.coerce.number().positive().default(60),
  /** The agent claims no new chunk while a GPU is hotter than this, in °C; running chunks go on. */
  GPU_MAX_TEMP_C: z.coerce.number().positive().default(85),
  /** The agent claims no new chunk while a GPU's memory is fuller than this percent; unset by default, since vLLM preallocates memory. */
  GPU_MAX_MEMORY_PERCENT: z.coerce.number().positive().max(100).optional(),
  /** Hysteresis of GPU protection: claims resume once every GPU is this far (°C, and memory points) under its limit. */
  GPU_RESUME_MARGIN: z.coerce.number().nonnegative().default(5),
  /** Serverless mode: a `.jsonl` object landing under this prefix of S3_BUCKET starts a batch. */
  TRIGGER_PREFIX: z.string().min(1).max(512).default("inbox/"),
  /** Serverless mode: `<TRIGGER_PREFIX><path>.jsonl` writes its results under `<this><path>/`; nothing under it ever starts a batch. */
  TRIGGER_RESULTS_PREFIX: z.string().min(1).max(512).default("results/"),
  /** Serverless mode: list TRIGGER_PREFIX this often for objects no event announced; unset, there is no poller. */
  TRIGGER_POLL_SECONDS: z.coerce.number().positive().optional(),
  /** When set, the API's `GET /metrics` requires `Authorization: Bearer <this>`; unset, it is open like /health. */
  METRICS_TOKEN: z.string().min(1).optional(),
});

export type Config = z.infer<typeof configSchema>;

/**
 * The settings the API's request handlers and background loops read. Its deps are typed by
 * this view, so a setting the API starts to read is added here, in sight of the agent's.
 */
export type ApiConfig = Pick<
  Config,
  | "API_HEADERS_TIMEOUT_SECONDS"
  | "API_POLL_MS"
  | "BARGE_ADMIN_KEY"
  | "BARGE_API_KEY"
  | "BARGE_TENANT"
  | "BARGE_TRUSTED_NETWORK"
  | "TENANT_BATCH_CREATES_PER_MINUTE"
  | "TENANT_BATCHES_PER_DAY"
  | "TENANT_FILE_UPLOADS_PER_MINUTE"
  | "TENANT_MAX_ACTIVE_BATCHES"
  | "TENANT_MAX_PRIORITY"
  | "TENANT_MAX_QUEUED_REQUESTS"
  | "CHUNK_SIZE"
  | "GPU_MAX_MEMORY_PERCENT"
  | "GPU_MAX_TEMP_C"
  | "GPU_RESUME_MARGIN"
  | "LEASE_SECONDS"
  | "MAX_ACTIVE_BATCHES"
  | "MAX_FILE_BYTES"
  | "MAX_LINE_BYTES"
  | "MAX_QUEUED_REQUESTS"
  | "MAX_REQUESTS_PER_BATCH"
  | "PRESIGN_EXPIRES_SECONDS"
  | "TRIGGER_POLL_SECONDS"
  | "TRIGGER_PREFIX"
  | "TRIGGER_RESULTS_PREFIX"
  | "UPLOAD_IDLE_TIMEOUT_SECONDS"
  | "UPLOAD_STALE_MULTIPART_HOURS"
  | "VALIDATION_MAX_ATTEMPTS"
  | "WEBHOOK_ALLOW_PRIVATE"
  | "WEBHOOK_MAX_ATTEMPTS"
  | "WEBHOOK_SECRET"
  | "WEBHOOK_URLS"
  | "S3_EVENTS_TOKEN"
  | "METRICS_TOKEN"
>;

/** The settings a running agent reads (its process start-up reads the connection settings besides). */
export type AgentConfig = Pick<
  Config,
  | "AGENT_CONCURRENCY"
  | "AGENT_ID"
  | "AGENT_MAX_CONCURRENCY"
  | "AGENT_METRICS_HOST"
  | "AGENT_METRICS_POLL_MS"
  | "AGENT_METRICS_PORT"
  | "AGENT_MIN_CONCURRENCY"
  | "AGENT_POLL_MS"
  | "AGENT_SHUTDOWN_GRACE_MS"
  | "CHUNK_MAX_ATTEMPTS"
  | "ENGINE_MAX_ATTEMPTS"
  | "ENGINE_MODEL"
  | "ENGINE_SWAP_AFTER_SECONDS"
  | "ENGINE_TIMEOUT_MS"
  | "FINALIZE_MAX_ATTEMPTS"
  | "GPU_MAX_MEMORY_PERCENT"
  | "GPU_MAX_TEMP_C"
  | "GPU_RESUME_MARGIN"
  | "LEASE_SECONDS"
  | "MAX_LINE_BYTES"
  | "SEGMENT_MAX_LINES"
  | "SEGMENT_MAX_MS"
>;

/** Parses env once; a bad value fails start-up with the offending names. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== "") picked[key] = v;
  }
  const parsed = configSchema.safeParse(picked);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new Error(`invalid configuration:\n${lines.join("\n")}`);
  }
  // Checked here rather than in the schema, which must stay a plain object for the name list above.
  if (parsed.data.WEBHOOK_URLS.length > 0 && !parsed.data.WEBHOOK_SECRET) {
    throw new Error("invalid configuration:\n  WEBHOOK_URLS: webhooks are signed, so WEBHOOK_SECRET must be set too");
  }
  if (parsed.data.AGENT_MIN_CONCURRENCY > agentMaxConcurrency(parsed.data)) {
    throw new Error("invalid configuration:\n  AGENT_MIN_CONCURRENCY: must not exceed AGENT_MAX_CONCURRENCY (default max(1024, AGENT_CONCURRENCY))");
  }
  return parsed.data;
}

/** AGENT_MAX_CONCURRENCY unset: the adaptive limit may still grow to saturate a large engine. */
export const DEFAULT_AGENT_MAX_CONCURRENCY = 1024;

/** The ceiling of the agent's adaptive concurrency limit, defaults applied. */
export function agentMaxConcurrency(c: Pick<Config, "AGENT_CONCURRENCY" | "AGENT_MAX_CONCURRENCY">): number {
  return c.AGENT_MAX_CONCURRENCY ?? Math.max(DEFAULT_AGENT_MAX_CONCURRENCY, c.AGENT_CONCURRENCY);
}

/** The S3 settings block of a config. */
export function s3Settings(c: Pick<Config, "S3_ENDPOINT" | "S3_REGION" | "S3_ACCESS_KEY_ID" | "S3_SECRET_ACCESS_KEY" | "S3_FORCE_PATH_STYLE">) {
  return {
    endpoint: c.S3_ENDPOINT,
    region: c.S3_REGION,
    accessKeyId: c.S3_ACCESS_KEY_ID,
    secretAccessKey: c.S3_SECRET_ACCESS_KEY,
    forcePathStyle: c.S3_FORCE_PATH_STYLE,
  };
}

import { z } from "zod";
import {
  batchEventObject,
  batchObject,
  createdBatchObject,
  errorObject,
  fileDeletedObject,
  fileObject,
  healthObject,
  listObject,
  livezObject,
  modelListObject,
  presignObject,
  readyzObject,
  requestErrorObject,
  uploadObject,
  uploadPartObject,
} from "./objects.js";
import { errorsListQuery } from "./routes/batch-errors.js";
import { logsQuery } from "./routes/batch-logs.js";
import { createBody, listQuery as batchListQuery, oneShotFields } from "./routes/batches.js";
import { fileFormFields, listQuery as fileListQuery } from "./routes/files.js";
import { presignBody } from "./routes/presign.js";
import { uploadCompleteBody, uploadCreateBody } from "./routes/uploads.js";
import { s3EventsAnswer, s3EventsBody } from "./routes/s3-events.js";
import { apiKeyDeletedObject, apiKeyObject, createdApiKeyObject, tenantListObject, tenantObject } from "./admin-objects.js";
import { createKeyBody, keysListQuery } from "./routes/admin-keys.js";
import { tenantPutBody } from "./routes/admin-tenants.js";
import { usagePage, usageQuery } from "./routes/admin-usage.js";
import { throughputObject, throughputQuery } from "./routes/throughput.js";
import { sessionObject } from "./routes/ui.js";

type Method = "get" | "post" | "delete" | "put";

/** A multipart body: the schema of its text fields, and the name of its streamed binary part. */
interface FormBody {
  fields: z.ZodObject;
  file: string;
}

/** One operation, described by the same zod schemas its handler validates with. */
interface Operation {
  method: Method;
  /** OpenAPI's path template, e.g. `/v1/batches/{batch_id}`. */
  path: string;
  summary: string;
  query?: z.ZodObject;
  json?: z.ZodType;
  form?: FormBody;
  /** The 200 answer's schema, or `binary` for a streamed file. */
  response: z.ZodType | "binary";
}

/** Every route the app serves. The OpenAPI test fails when one is added to the app but not here. */
export const operations: Operation[] = [
  {
    method: "get",
    path: "/health",
    summary: "Status with reasons, GPUs, workers (with the API key, when one is set), queue and limits; 503 when Postgres or the bucket is unreachable.",
    response: healthObject,
  },
  { method: "get", path: "/livez", summary: "Liveness: the process is up (no I/O).", response: livezObject },
  { method: "get", path: "/readyz", summary: "Readiness: Postgres and the bucket answer (503 naming the one that does not).", response: readyzObject },
  { method: "get", path: "/openapi.json", summary: "This document.", response: z.record(z.string(), z.unknown()) },
  {
    method: "post",
    path: "/v1/files",
    summary: "Upload a file (multipart), streamed to S3.",
    form: { fields: fileFormFields, file: "file" },
    response: fileObject,
  },
  { method: "get", path: "/v1/files", summary: "List files.", query: fileListQuery, response: listObject(fileObject) },
  { method: "get", path: "/v1/files/{file_id}", summary: "Retrieve a file.", response: fileObject },
  { method: "delete", path: "/v1/files/{file_id}", summary: "Delete a file (409 while a running batch reads it).", response: fileDeletedObject },
  { method: "get", path: "/v1/files/{file_id}/content", summary: "Stream a file's content from S3.", response: "binary" },
  {
    method: "post",
    path: "/v1/files/presign",
    summary: "Barge: a presigned PUT straight to S3 for a new file.",
    json: presignBody,
    response: presignObject,
  },
  { method: "post", path: "/v1/files/{file_id}/complete", summary: "Barge: check a presigned upload and make it a file.", response: fileObject },
  { method: "post", path: "/v1/uploads", summary: "Start an upload in parts.", json: uploadCreateBody, response: uploadObject },
  {
    method: "post",
    path: "/v1/uploads/{upload_id}/parts",
    summary: "Add a part (at most 64 MiB, any order, in parallel).",
    form: { fields: z.object({}), file: "data" },
    response: uploadPartObject,
  },
  {
    method: "post",
    path: "/v1/uploads/{upload_id}/complete",
    summary: "Join the listed parts, in order, into a file.",
    json: uploadCompleteBody,
    response: uploadObject,
  },
  { method: "post", path: "/v1/uploads/{upload_id}/cancel", summary: "Cancel an upload and drop its parts.", response: uploadObject },
  {
    method: "post",
    path: "/v1/batches",
    summary: "Create a batch from a file (JSON), or upload and create in one request (multipart).",
    json: createBody,
    form: { fields: oneShotFields, file: "file" },
    response: createdBatchObject,
  },
  { method: "get", path: "/v1/batches", summary: "List batches, newest first.", query: batchListQuery, response: listObject(batchObject) },
  { method: "get", path: "/v1/batches/{batch_id}", summary: "Retrieve a batch.", response: batchObject },
  { method: "post", path: "/v1/batches/{batch_id}/cancel", summary: "Cancel a batch.", response: batchObject },
  { method: "post", path: "/v1/batches/{batch_id}/pause", summary: "Barge: pause a running batch (idempotent); it stays in_progress with paused_at set.", response: batchObject },
  { method: "post", path: "/v1/batches/{batch_id}/resume", summary: "Barge: resume a paused batch (idempotent).", response: batchObject },
  {
    method: "delete",
    path: "/v1/batches/{batch_id}",
    summary: "The seeds' cancel: as POST …/cancel, but idempotent (a final batch is answered as it is).",
    response: batchObject,
  },
  {
    method: "get",
    path: "/v1/batches/{batch_id}/errors",
    summary: "Barge: the batch's failed requests, in input order (paged by custom_id).",
    query: errorsListQuery,
    response: listObject(requestErrorObject),
  },
  {
    method: "get",
    path: "/v1/batches/{batch_id}/results",
    summary: "Stream the batch's output lines (NDJSON, byte ranges); while it runs, the results committed so far, in input order (x-barge-partial: true).",
    response: "binary",
  },
  {
    method: "get",
    path: "/v1/batches/{batch_id}/failed",
    summary: "The seeds' name for …/errors: the same list.",
    query: errorsListQuery,
    response: listObject(requestErrorObject),
  },
  { method: "post", path: "/v1/batches/{batch_id}/retry", summary: "Barge: re-run the batch's failed requests as a new batch.", response: batchObject },
  {
    method: "get",
    path: "/v1/batches/{batch_id}/logs",
    summary: "Barge: the batch's timeline, oldest first (paged by entry id; format=text for one line per entry).",
    query: logsQuery,
    response: listObject(batchEventObject),
  },
  { method: "get", path: "/v1/models", summary: "Models served by agents seen in the last minute.", response: modelListObject },
  {
    method: "post",
    path: "/v1/s3-events",
    summary: "Barge: S3 event notifications for serverless mode, a Records[] body (RGW, MinIO) or an SNS envelope (AWS, by x-amz-sns-message-type); authenticated by S3_EVENTS_TOKEN (Bearer or ?token=), not the API key; 404 while it is unset.",
    json: s3EventsBody,
    response: s3EventsAnswer,
  },
  {
    method: "post",
    path: "/v1/admin/keys",
    summary: "Admin (BARGE_ADMIN_KEY): create a tenant's API key; 201 with the secret, shown this once (only its SHA-256 is stored).",
    json: createKeyBody,
    response: createdApiKeyObject,
  },
  {
    method: "get",
    path: "/v1/admin/keys",
    summary: "Admin: list API keys, newest first, redacted; revoked keys stay listed with revoked_at set.",
    query: keysListQuery,
    response: listObject(apiKeyObject),
  },
  { method: "delete", path: "/v1/admin/keys/{key_id}", summary: "Admin: revoke a key (idempotent); it gets 401 at once on every replica.", response: apiKeyDeletedObject },
  { method: "get", path: "/v1/admin/tenants", summary: "Admin: every tenant with settings or a key, by name.", response: tenantListObject },
  {
    method: "get",
    path: "/v1/admin/tenants/{tenant}",
    summary: "Admin: a tenant's weight, limits in force and overrides; any name is a tenant (one never set shows the defaults).",
    response: tenantObject,
  },
  {
    method: "put",
    path: "/v1/admin/tenants/{tenant}",
    summary: "Admin: set a tenant's weight and limits, merged into its overrides (null: unlimited; \"default\": back to the TENANT_* default).",
    json: tenantPutBody,
    response: tenantObject,
  },
  {
    method: "get",
    path: "/v1/admin/usage",
    summary: "Admin: committed usage per UTC day and tenant (OpenAI's completions usage page; project_id is the tenant), group_by=model for one result per model.",
    query: usageQuery,
    response: usagePage,
  },
  {
    method: "get",
    path: "/metrics",
    summary: "Prometheus text format (0.0.4): queue, fleet and usage figures read from Postgres, HTTP requests, process metrics; Bearer METRICS_TOKEN when it is set, never the API key.",
    response: "binary",
  },
  {
    method: "get",
    path: "/v1/throughput",
    summary: "Barge: the caller's requests/s and tokens/s per minute over the last `minutes` (default 60), from its chunks' committed checkpoints; the dashboard's chart.",
    query: throughputQuery,
    response: throughputObject,
  },
  { method: "get", path: "/", summary: "The web dashboard's page (static, no key needed; its data calls send the key).", response: "binary" },
  { method: "get", path: "/ui/app.js", summary: "The web dashboard's script.", response: "binary" },
  { method: "get", path: "/ui/app.css", summary: "The web dashboard's stylesheet.", response: "binary" },
  {
    method: "get",
    path: "/ui/session",
    summary: "Whether this server needs a key, and whose key the Authorization header holds (anonymous when none or a wrong one; never 401).",
    response: sessionObject,
  },
];

const jsonSchema = (schema: z.ZodType, io: "input" | "output") => {
  // Transforms and refinements have no JSON Schema; the input side they start from is what clients send.
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any", target: "draft-2020-12" }) as Record<string, unknown>;
  return rest;
};

function formSchema(form: FormBody) {
  const fields = jsonSchema(form.fields, "input") as { properties?: Record<string, unknown>; required?: string[] };
  return {
    ...fields,
    properties: { ...fields.properties, [form.file]: { type: "string", format: "binary" } },
    required: [...(fields.required ?? []), form.file],
  };
}

function describe(op: Operation) {
  const pathParams = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } }));
  const query = op.query
    ? Object.entries((jsonSchema(op.query, "input") as { properties: Record<string, unknown> }).properties).map(([name, schema]) => ({
        name,
        in: "query",
        required: false,
        schema,
      }))
    : [];
  const content: Record<string, unknown> = {};
  if (op.json) content["application/json"] = { schema: jsonSchema(op.json, "input") };
  if (op.form) content["multipart/form-data"] = { schema: formSchema(op.form) };
  const ok =
    op.response === "binary"
      ? { "application/octet-stream": { schema: { type: "string", format: "binary" } } }
      : { "application/json": { schema: jsonSchema(op.response, "output") } };
  return {
    summary: op.summary,
    ...(pathParams.length + query.length > 0 ? { parameters: [...pathParams, ...query] } : {}),
    ...(Object.keys(content).length > 0 ? { requestBody: { required: true, content } } : {}),
    responses: {
      "200": { description: "OK", content: ok },
      default: { description: "An error in OpenAI's shape.", content: { "application/json": { schema: jsonSchema(errorObject, "output") } } },
    },
  };
}

/** The OpenAPI 3.1 document of the API, generated from the schemas the handlers validate with. */
export function openApiDocument() {
  const paths: Record<string, Partial<Record<Method, unknown>>> = {};
  for (const op of operations) (paths[op.path] ??= {})[op.method] = describe(op);
  return {
    openapi: "3.1.0",
    info: { title: "Barge", version: "1", description: "OpenAI-compatible Files, Uploads and Batch APIs, plus Barge's extensions." },
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    security: [{ bearer: [] }],
    paths,
  };
}

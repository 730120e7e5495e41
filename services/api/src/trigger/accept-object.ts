import { basename } from "node:path";
import {
  failNewBatch,
  headLandedObject,
  isPreconditionFailed,
  isSupportedEndpoint,
  newId,
  readObjectStart,
  settleLandedObject,
  storableText,
  type BatchErrorEntry,
  type ClaimedLandedObject,
} from "@barge/core";
import type { ApiDeps } from "../deps.js";
import { insertBatch } from "../store/batches.js";
import { insertFile } from "../store/files.js";
import { admitNewBatch, cappedPriority, priorityOverCap, tenantLimits } from "../tenant-limits.js";
import { internalDestination } from "../webhooks/destination.js";
import { inboxOwner } from "./inbox-owner.js";
import { resultsPrefixFor } from "./landing-rules.js";
import { objectSettingsSchema, settingsProblem, type ObjectSettings } from "./user-metadata.js";

const COMPLETION_WINDOW_MS = 24 * 3600 * 1000;
/** How much of the object is read to learn the endpoint from its first line. */
const FIRST_LINE_BYTES = 64 * 1024;
const DEFAULT_ENDPOINT = "/v1/chat/completions";

/** How the acceptor settled one object. */
export type Acceptance = { outcome: "batch"; batchId: string } | { outcome: "overwritten" } | { outcome: "taken" } | { outcome: "refused"; error: string };

/**
 * The endpoint the file names on its first line. The batch needs one before validation runs;
 * when the line names none (or is no JSON), the default is taken and validation then reports
 * the line, as it would for an API upload.
 */
async function firstLineEndpoint(deps: ApiDeps, o: ClaimedLandedObject, bytes: number): Promise<string> {
  // An empty object has no line to read; validation then fails it as `empty_file`.
  if (bytes === 0) return DEFAULT_ENDPOINT;
  const head = await readObjectStart(deps, o.key, o.etag, Math.min(bytes, FIRST_LINE_BYTES));
  const end = head.indexOf(0x0a);
  try {
    const url = (JSON.parse(head.subarray(0, end < 0 ? head.length : end).toString("utf8")) as { url?: unknown }).url;
    return typeof url === "string" && isSupportedEndpoint(url) ? url : DEFAULT_ENDPOINT;
  } catch {
    return DEFAULT_ENDPOINT;
  }
}

/** Why the object's settings cannot run, or null. The webhook is refused as the API refuses it. */
function settingsError(deps: ApiDeps, metadata: Record<string, string>): { settings: ObjectSettings; error: BatchErrorEntry | null } {
  const parsed = objectSettingsSchema.safeParse(metadata);
  if (!parsed.success) {
    const p = settingsProblem(parsed.error);
    return { settings: {}, error: { code: "invalid_metadata", message: storableText(p.message, 1024), param: p.param, line: null } };
  }
  const url = parsed.data["barge-webhook-url"];
  const param = "x-amz-meta-barge-webhook-url";
  if (url !== undefined && !deps.config.WEBHOOK_SECRET) {
    return { settings: {}, error: { code: "webhooks_not_configured", message: "Webhooks are not configured on this server (WEBHOOK_SECRET is unset), so no webhook_url can be signed.", param, line: null } };
  }
  const internal = url === undefined || deps.config.WEBHOOK_ALLOW_PRIVATE ? null : internalDestination(url);
  if (internal !== null) {
    return { settings: {}, error: { code: "internal_webhook_url", message: `The webhook_url's host is internal (${internal}); this server sends batch webhooks to public addresses only.`, param, line: null } };
  }
  return { settings: parsed.data, error: null };
}

/**
 * Starts the batch of a claimed landed object: a file row naming the inbox object in place
 * (pinned by its ETag, never deleted by Barge) and a batch writing under `results/<path>/`, in
 * one transaction with the object's settlement. The batch belongs to the tenant `inboxOwner`
 * names; an object it refuses is settled `failed` and starts nothing. Settings that cannot run
 * still make the batch, failed at once with the error, so status.json tells the user. A key that
 * holds other bytes by now is settled `overwritten`: the newer version has its own row.
 */
export async function acceptObject(deps: ApiDeps, o: ClaimedLandedObject): Promise<Acceptance> {
  const head = await headLandedObject(deps, o.key, o.etag);
  if (head === "gone") return settleOverwritten(deps, o);
  let endpoint: string;
  try {
    endpoint = await firstLineEndpoint(deps, o, head.bytes);
  } catch (err) {
    if (isPreconditionFailed(err)) return settleOverwritten(deps, o);
    throw err;
  }
  const owner = await inboxOwner(deps.db, o.key, deps.config);
  if ("refused" in owner) {
    const error = storableText(owner.refused, 1024);
    await settleLandedObject(deps.db, { bucket: o.bucket, key: o.key, etag: o.etag, outcome: "failed", batchId: null, error });
    return { outcome: "refused", error };
  }
  const { tenant } = owner;
  const { settings, error } = settingsError(deps, head.metadata);
  const quotedEtag = `"${o.etag}"`;
  const metadata = {
    ...settings["barge-metadata"],
    // Barge's keys win, so a batch's source cannot be made up by its uploader.
    source: "s3",
    input_key: o.key,
    input_etag: quotedEtag,
  };
  const batchId = await deps.db.transaction().execute(async (tx) => {
    const limits = await tenantLimits(deps, tx, tenant);
    const asked = settings["barge-priority"];
    const overCap = priorityOverCap(asked, limits);
    // A priority above the tenant's cap fails the batch, as the API refuses it; the quotas only
    // delay it: their 429 leaves the object to the acceptor's next try.
    const refused = error ?? (overCap === null ? null : { code: "priority_above_cap", message: overCap, param: "x-amz-meta-barge-priority", line: null });
    const file = await insertFile(tx, {
      id: newId("file-"),
      tenant,
      purpose: "batch",
      filename: storableText(basename(o.key), 512),
      bytes: head.bytes,
      status: "processed",
      s3_key: o.key,
      etag: quotedEtag,
    });
    if (!refused) await admitNewBatch(deps, tx, tenant, limits);
    const created = new Date();
    const batch = await insertBatch(tx, {
      id: newId("batch_"),
      tenant,
      endpoint,
      model: null,
      model_override: false,
      input_file_id: file.id,
      completion_window: settings["barge-completion-window"] ?? "24h",
      metadata,
      priority: refused ? (asked ?? 0) : cappedPriority(asked, limits),
      created_at: created,
      expires_at: new Date(created.getTime() + COMPLETION_WINDOW_MS),
      output_expires_after_seconds: null,
      webhook_url: settings["barge-webhook-url"] ?? null,
      retry_of: null,
      results_prefix: resultsPrefixFor(o.key, deps.config),
    });
    if (refused) await failNewBatch(tx, batch.id, [refused]);
    const first = await settleLandedObject(tx, { bucket: o.bucket, key: o.key, etag: o.etag, outcome: "batch", batchId: batch.id, error: null });
    if (!first) throw new Taken();
    return batch.id;
  }).catch((err: unknown) => {
    if (err instanceof Taken) return undefined;
    throw err;
  });
  return batchId === undefined ? { outcome: "taken" } : { outcome: "batch", batchId };
}

/** Another acceptor settled the row first (its claim outlived ours): this one's work rolls back. */
class Taken extends Error {}

async function settleOverwritten(deps: ApiDeps, o: ClaimedLandedObject): Promise<Acceptance> {
  await settleLandedObject(deps.db, { bucket: o.bucket, key: o.key, etag: o.etag, outcome: "overwritten", batchId: null, error: null });
  return { outcome: "overwritten" };
}

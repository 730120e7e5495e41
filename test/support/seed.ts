import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { claimBatchWork, keys, newId, putObject, validateBatch } from "@barge/core";
import { testLog, type TestContext } from "./context.js";

export interface SeededBatch {
  batchId: string;
  fileId: string;
  inputKey: string;
  tenant: string;
}

/** One chat-completions request line for the sim's model. */
export function chatLine(customId: string, content: string, extra: Record<string, unknown> = {}) {
  return {
    custom_id: customId,
    method: "POST",
    url: "/v1/chat/completions",
    body: { model: "barge-sim-1", messages: [{ role: "user", content }], ...extra },
  };
}

/**
 * Creates an `in_progress` batch straight through core, as the API's upload and validator would:
 * PUTs the JSONL input, inserts its file row and a `validating` batch, then claims and validates
 * it, which enqueues its chunks (CHUNK_SIZE of the context's config). Lines may be objects
 * (serialized) or raw strings (blank lines, odd spacing).
 */
export async function seedBatch(
  ctx: TestContext,
  lines: (object | string)[],
  opts: { endpoint?: string; tenant?: string } = {},
): Promise<SeededBatch> {
  const tenant = opts.tenant ?? "default";
  const fileId = newId("file-");
  const inputKey = keys.input(tenant, fileId);
  const text = lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n") + "\n";
  const bytes = Buffer.byteLength(text);
  await putObject(ctx, inputKey, text);
  await ctx.db
    .insertInto("files")
    .values({ id: fileId, tenant, purpose: "batch", filename: "input.jsonl", bytes, status: "processed", s3_key: inputKey })
    .execute();
  const batchId = newId("batch_");
  await ctx.db
    .insertInto("batches")
    .values({
      id: batchId,
      tenant,
      status: "validating",
      endpoint: opts.endpoint ?? "/v1/chat/completions",
      input_file_id: fileId,
      completion_window: "24h",
      metadata: JSON.stringify(null),
      errors: JSON.stringify(null),
      stitch_state: JSON.stringify(null),
      expires_at: new Date(Date.now() + 24 * 3600 * 1000),
    })
    .execute();
  const claimed = await claimBatchWork(ctx.db, { workerId: "test-seed", kinds: ["validating"], leaseSeconds: 30, batchId });
  if (!claimed) {
    // An API running in the suite has a validator too, and it may have been first.
    const status = await waitFor(`batch ${batchId} to be validated`, async () => {
      const b = await ctx.db.selectFrom("batches").select("status").where("id", "=", batchId).executeTakeFirstOrThrow();
      return b.status === "validating" ? undefined : b.status;
    });
    if (status !== "in_progress") throw new Error(`seeded batch ${batchId} is ${status}, not in_progress`);
    return { batchId, fileId, inputKey, tenant };
  }
  const outcome = await validateBatch(
    {
      db: ctx.db,
      s3: ctx.s3,
      bucket: ctx.bucket,
      log: testLog,
      leaseSeconds: 30,
      maxAttempts: ctx.config.VALIDATION_MAX_ATTEMPTS,
      limits: { chunkSize: ctx.config.CHUNK_SIZE, maxRequests: ctx.config.MAX_REQUESTS_PER_BATCH, maxBytes: ctx.config.MAX_FILE_BYTES },
    },
    claimed,
  );
  if (outcome !== "in_progress") throw new Error(`seeded batch ${batchId} failed validation`);
  return { batchId, fileId, inputKey, tenant };
}

/** Polls `probe` until it returns something truthy, or fails naming `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The whole text of a (small, test-sized) object. */
export async function readObject(ctx: TestContext, key: string): Promise<string> {
  const res = await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key }));
  return (await res.Body?.transformToString("utf8")) ?? "";
}

/** Every key under a prefix. */
export async function listKeys(ctx: TestContext, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const res = await ctx.s3.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
    for (const o of res.Contents ?? []) if (o.Key) out.push(o.Key);
    token = res.IsTruncated ? res.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** Waits until a finished batch's segment rows and objects are deleted (the finalizer's last step). */
export async function segmentsGone(ctx: TestContext, batchId: string): Promise<void> {
  await waitFor(`segments of ${batchId} to be deleted`, async () => {
    const rows = await ctx.db.selectFrom("segments").select("seq").where("batch_id", "=", batchId).execute();
    return rows.length === 0 && (await listKeys(ctx, `batches/${batchId}/`)).length === 0;
  });
}

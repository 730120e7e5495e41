import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { claimBatchWork, enqueueChunks, keys, newId, putObject, validateBatch, type Db, type NewBatch } from "@barge/core";
import { testLog, type TestContext } from "./context.js";

/** What `validateBatch` needs, from a test context's settings: its own validator, by hand. */
export function validatorDeps(ctx: TestContext): Parameters<typeof validateBatch>[0] {
  return {
    db: ctx.db,
    s3: ctx.s3,
    bucket: ctx.bucket,
    log: testLog,
    leaseSeconds: 30,
    maxAttempts: ctx.config.VALIDATION_MAX_ATTEMPTS,
    limits: { chunkSize: ctx.config.CHUNK_SIZE, maxRequests: ctx.config.MAX_REQUESTS_PER_BATCH, maxBytes: ctx.config.MAX_FILE_BYTES },
  };
}

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
  const { fileId, inputKey } = await putInputFile(ctx, jsonlText(lines), tenant);
  const batchId = newId("batch_");
  await insertBatch(ctx.db, { id: batchId, tenant, input_file_id: fileId, endpoint: opts.endpoint ?? "/v1/chat/completions" });
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
  const outcome = await validateBatch(validatorDeps(ctx), claimed);
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

/** JSONL text of `lines`: objects serialized, strings as they are, each ending in a newline. */
function jsonlText(lines: (object | string)[]): string {
  return lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n") + "\n";
}

/** PUTs `text` as a new input object and inserts its `processed` file row. */
export async function putInputFile(ctx: TestContext, text: string, tenant = "default"): Promise<{ fileId: string; inputKey: string }> {
  const fileId = newId("file-");
  const inputKey = keys.input(tenant, fileId);
  await putObject(ctx, inputKey, text);
  await ctx.db
    .insertInto("files")
    .values({ id: fileId, tenant, purpose: "batch", filename: "input.jsonl", bytes: Buffer.byteLength(text), status: "processed", s3_key: inputKey })
    .execute();
  return { fileId, inputKey };
}

/** Inserts a batch row: a `validating` chat-completions batch of the default tenant unless `row` says otherwise. */
export async function insertBatch(db: Db, row: Pick<NewBatch, "id" | "input_file_id"> & Partial<NewBatch>) {
  return db
    .insertInto("batches")
    .values({
      tenant: "default",
      status: "validating",
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
      metadata: JSON.stringify(null),
      errors: JSON.stringify(null),
      stitch_state: JSON.stringify(null),
      expires_at: new Date(Date.now() + 24 * 3600 * 1000),
      ...row,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * An `in_progress` batch of one chunk over `lines`, enqueued without validation: input that
 * reaches a run although validation would refuse it today (a rule added or a limit lowered since).
 */
export async function seedUnvalidatedBatch(ctx: TestContext, lines: (object | string)[]): Promise<string> {
  const text = jsonlText(lines);
  const { fileId } = await putInputFile(ctx, text);
  const batchId = newId("batch_");
  await ctx.db.transaction().execute(async (tx) => {
    const batch = await insertBatch(tx, { id: batchId, input_file_id: fileId, status: "in_progress", model: "barge-sim-1", total_requests: lines.length, in_progress_at: new Date() });
    await enqueueChunks(tx, batch, "barge-sim-1", [{ idx: 0, requestStart: 0, requestCount: lines.length, startLine: 1, startOffset: 0, endOffset: Buffer.byteLength(text) }]);
  });
  return batchId;
}

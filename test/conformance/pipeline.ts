import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { expect } from "vitest";
import { expectedBody } from "@barge/engine-sim";
import type { TestContext } from "../support/context.js";
import { waitFor, type S3Recorder } from "./helpers.js";

export const MODEL = "barge-sim-1";

export interface EmbeddingRequest {
  custom_id: string;
  method: "POST";
  url: "/v1/embeddings";
  body: { model: string; input: string; dimensions: number };
}

/** `n` embedding requests whose responses carry `dimensions` floats each (~21.5 bytes per float as JSON). */
export function embeddingRequests(n: number, dimensions: number, tag: string): EmbeddingRequest[] {
  return Array.from({ length: n }, (_, i) => ({
    custom_id: `${tag}-${String(i).padStart(5, "0")}`,
    method: "POST" as const,
    url: "/v1/embeddings" as const,
    body: { model: MODEL, input: `${tag} input ${i}`, dimensions },
  }));
}

export const toJsonl = (lines: unknown[]) => lines.map((l) => `${JSON.stringify(l)}\n`).join("");

/** Uploads `requests` through the API and creates a batch of them; returns the batch id. */
export async function submitBatch(apiUrl: string, requests: EmbeddingRequest[], filename: string): Promise<string> {
  const form = new FormData();
  form.set("purpose", "batch");
  form.set("file", new Blob([toJsonl(requests)], { type: "application/jsonl" }), filename);
  const file = await fetch(`${apiUrl}/v1/files`, { method: "POST", body: form });
  expect(file.status).toBe(200);
  const { id: fileId } = (await file.json()) as { id: string };
  const batch = await fetch(`${apiUrl}/v1/batches`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ input_file_id: fileId, endpoint: "/v1/embeddings", completion_window: "24h" }),
  });
  expect(batch.status).toBe(200);
  return ((await batch.json()) as { id: string }).id;
}

export interface BatchView {
  id: string;
  status: string;
  request_counts: { total: number; completed: number; failed: number };
  output_file_id: string | null;
  error_file_id: string | null;
  output_location: { bucket: string; key: string; errors_key: string | null } | null;
}

export async function getBatch(apiUrl: string, id: string): Promise<BatchView> {
  const res = await fetch(`${apiUrl}/v1/batches/${id}`);
  expect(res.status).toBe(200);
  return (await res.json()) as BatchView;
}

const FINAL = ["completed", "failed", "expired", "cancelled"];

/** Polls the API until the batch reaches a final state. */
export function waitFinal(apiUrl: string, id: string, ms = 150_000): Promise<BatchView> {
  return waitFor(`batch ${id} to finish`, async () => {
    const b = await getBatch(apiUrl, id);
    return FINAL.includes(b.status) ? b : undefined;
  }, ms, 200);
}

export async function readObject(ctx: TestContext, key: string): Promise<Buffer> {
  const res = await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

export async function listKeys(ctx: TestContext, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const res = await ctx.s3.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of res.Contents ?? []) keys.push(o.Key!);
    token = res.IsTruncated ? res.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/** Waits until the finalizer has deleted a final batch's segment objects and rows. */
export async function waitSegmentsRemoved(ctx: TestContext, batchId: string): Promise<void> {
  await waitFor(`the segments of ${batchId} to be removed`, async () => {
    const objects = await listKeys(ctx, `batches/${batchId}/`);
    const rows = await ctx.db.selectFrom("segments").select("s3_key").where("batch_id", "=", batchId).execute();
    return objects.length === 0 && rows.length === 0 ? true : undefined;
  }, 60_000);
}

export interface Segment {
  key: string;
  chunk: number;
  seq: number;
  body: Buffer;
}

/** A batch's committed segments of one kind, from the `segments` table, in stitch order. */
export async function segmentRows(ctx: TestContext, batchId: string, kind: "output" | "error") {
  return ctx.db
    .selectFrom("segments")
    .select(["s3_key", "chunk_idx", "seq", "bytes"])
    .where("batch_id", "=", batchId)
    .where("kind", "=", kind)
    .orderBy("chunk_idx")
    .orderBy("seq")
    .execute();
}

/**
 * Holds every listing of `batches/` (how the finalizer starts deleting a final batch's segments,
 * before it deletes their rows) until `release()`, so a test can read which segments a batch
 * committed after it completed. The agent waits meanwhile; nothing else depends on it.
 */
export function holdSegmentCleanup(rec: S3Recorder): { release(): void } {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  rec.holdWith = (c) => (c.command === "ListObjectsV2Command" && c.prefix?.startsWith("batches/") ? gate : undefined);
  return {
    release() {
      rec.holdWith = undefined;
      release();
    },
  };
}

/** The committed segments of one kind of a batch, with the bytes the agents PUT for each. */
export async function committedSegments(ctx: TestContext, recorders: S3Recorder[], batchId: string, kind: "output" | "error"): Promise<Segment[]> {
  const bodies = new Map<string, Buffer>();
  for (const r of recorders) for (const c of r.of("PutObjectCommand")) if (c.key && c.body) bodies.set(c.key, c.body);
  return (await segmentRows(ctx, batchId, kind)).map((row) => {
    const body = bodies.get(row.s3_key);
    if (!body) throw new Error(`segment ${row.s3_key} is committed but its PUT was not recorded`);
    expect(body.length, row.s3_key).toBe(row.bytes);
    return { key: row.s3_key, chunk: row.chunk_idx, seq: row.seq, body };
  });
}

/**
 * Checks a stitched output line by line against the input: one line per request, in input
 * order, each answering its own request with engine-sim's deterministic embedding.
 */
export function checkEmbeddingOutput(text: string, requests: EmbeddingRequest[]): void {
  const lines = text.split("\n");
  expect(lines.pop()).toBe("");
  expect(lines).toHaveLength(requests.length);
  lines.forEach((line, i) => {
    const req = requests[i]!;
    const parsed = JSON.parse(line) as { custom_id: string; error: unknown; response: { status_code: number; body: Record<string, unknown> } };
    expect(parsed.custom_id).toBe(req.custom_id);
    expect(parsed.error).toBeNull();
    expect(parsed.response.status_code).toBe(200);
    const { created: _created, ...body } = parsed.response.body;
    expect(body).toEqual(expectedBody("/v1/embeddings", req.body));
  });
}

import { createReadStream, statSync } from "node:fs";
import { basename } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import type { Db } from "@barge/core";

// The benchmarks talk to Barge as a user does: presigned upload straight to S3, the OpenAI-style
// Batch API, polling. Exact transition times come from the batch row afterwards.

export interface BatchObject {
  id: string;
  status: string;
  request_counts: { total: number; completed: number; failed: number };
  output_file_id: string | null;
  error_file_id: string | null;
  errors: unknown;
}

export const FINAL_STATUSES = ["completed", "failed", "expired", "cancelled"];

/** A call as a tenant when `key` (its API key) is given, else as the open API's one user. */
export async function api<T>(base: string, method: string, path: string, body?: unknown, key?: string): Promise<T> {
  const headers: Record<string, string> = {
    ...(body === undefined ? {} : { "content-type": "application/json" }),
    ...(key === undefined ? {} : { authorization: `Bearer ${key}` }),
  };
  const res = await fetch(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text) as T;
}

export interface Upload {
  fileId: string;
  bytes: number;
  /** Presign request, milliseconds. */
  presignMs: number;
  /** The PUT of the bytes straight to S3. */
  putMs: number;
  /** POST /v1/files/{id}/complete, which checks (streams and validates) the object. */
  completeMs: number;
}

/** Presigned upload of a local file: presign, PUT the bytes to S3, complete. */
export async function uploadPresigned(apiUrl: string, path: string, key?: string): Promise<Upload> {
  const bytes = statSync(path).size;
  const t0 = performance.now();
  const p = await api<{ id: string; upload_url: string }>(apiUrl, "POST", "/v1/files/presign", { filename: basename(path), purpose: "batch", bytes }, key);
  const t1 = performance.now();
  const put = await request(p.upload_url, {
    method: "PUT",
    headers: { "content-length": String(bytes), "content-type": "application/jsonl" },
    body: createReadStream(path),
    headersTimeout: 0,
    bodyTimeout: 0,
  });
  const answer = await put.body.text();
  if (put.statusCode !== 200) throw new Error(`presigned PUT answered ${put.statusCode}: ${answer.slice(0, 500)}`);
  const t2 = performance.now();
  await api(apiUrl, "POST", `/v1/files/${p.id}/complete`, undefined, key);
  const t3 = performance.now();
  return { fileId: p.id, bytes, presignMs: t1 - t0, putMs: t2 - t1, completeMs: t3 - t2 };
}

export function createBatch(apiUrl: string, fileId: string, key?: string): Promise<BatchObject> {
  return api<BatchObject>(apiUrl, "POST", "/v1/batches", { input_file_id: fileId, endpoint: "/v1/chat/completions", completion_window: "24h" }, key);
}

export function getBatch(apiUrl: string, id: string, key?: string): Promise<BatchObject> {
  return api<BatchObject>(apiUrl, "GET", `/v1/batches/${id}`, undefined, key);
}

export function cancelBatch(apiUrl: string, id: string, key?: string): Promise<BatchObject> {
  return api<BatchObject>(apiUrl, "POST", `/v1/batches/${id}/cancel`, undefined, key);
}

/** Polls a batch until `done(batch)` (default: a final status) or the deadline; returns the last answer. */
export async function waitForBatch(
  apiUrl: string,
  id: string,
  o: { timeoutMs: number; intervalMs?: number; done?: (b: BatchObject) => boolean; onPoll?: (b: BatchObject) => void; key?: string },
): Promise<{ batch: BatchObject; timedOut: boolean }> {
  const done = o.done ?? ((b) => FINAL_STATUSES.includes(b.status));
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    const batch = await getBatch(apiUrl, id, o.key);
    o.onPoll?.(batch);
    if (done(batch)) return { batch, timedOut: false };
    if (Date.now() > deadline) return { batch, timedOut: true };
    await sleep(o.intervalMs ?? 500);
  }
}

/** A batch's transition times from its row, as epoch milliseconds (null when not reached). */
export interface Timeline {
  created: number;
  inProgress: number | null;
  finalizing: number | null;
  completed: number | null;
  cancelled: number | null;
}

export async function batchTimeline(db: Db, id: string): Promise<Timeline> {
  const row = await db
    .selectFrom("batches")
    .select(["created_at", "in_progress_at", "finalizing_at", "completed_at", "cancelled_at"])
    .where("id", "=", id)
    .executeTakeFirstOrThrow();
  const ms = (d: Date | null) => (d === null ? null : d.getTime());
  return {
    created: row.created_at.getTime(),
    inProgress: ms(row.in_progress_at),
    finalizing: ms(row.finalizing_at),
    completed: ms(row.completed_at),
    cancelled: ms(row.cancelled_at),
  };
}

/** Seconds between two timeline points, or null. */
export function span(from: number | null, to: number | null): number | null {
  return from === null || to === null ? null : (to - from) / 1000;
}

/** Streams a batch's `GET /v1/batches/{id}/results` to nowhere, as a user's download: bytes read and the declared length. */
export async function downloadResults(apiUrl: string, id: string): Promise<{ bytes: number; contentLength: number }> {
  const res = await request(`${apiUrl}/v1/batches/${id}/results`, { headersTimeout: 0, bodyTimeout: 0 });
  let bytes = 0;
  for await (const piece of res.body) bytes += (piece as Buffer).length;
  if (res.statusCode !== 200) throw new Error(`GET /v1/batches/${id}/results answered ${res.statusCode}`);
  return { bytes, contentLength: Number(res.headers["content-length"]) };
}

import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { isFinalBatchStatus } from "@barge/core";

const batchSchema = z.looseObject({
  id: z.string(),
  status: z.string(),
  endpoint: z.string(),
  model: z.string().nullable(),
  input_file_id: z.string(),
  output_file_id: z.string().nullable(),
  error_file_id: z.string().nullable(),
  errors: z.object({ data: z.array(z.looseObject({ code: z.string(), message: z.string(), line: z.number().nullable() })) }).nullable(),
  request_counts: z.object({ total: z.number(), completed: z.number(), failed: z.number() }),
  output_location: z.object({ bucket: z.string(), key: z.string(), errors_key: z.string().nullable() }).nullable().optional(),
  results_url: z.string().nullable().optional(),
});
export type Batch = z.infer<typeof batchSchema>;

const presignSchema = z.looseObject({ id: z.string(), upload_url: z.string(), expires_at: z.number() });
const fileSchema = z.looseObject({ id: z.string(), bytes: z.number(), status: z.string() });
const listSchema = z.object({ data: z.array(batchSchema) });

/** An API error answered in OpenAI's shape, surfaced with its code. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string | null, message: string) {
    super(message);
  }
}

/** A small typed client for Barge's REST API, validating every answer with zod. */
export class BargeClient {
  constructor(private readonly baseUrl: string, private readonly apiKey?: string) {}

  /** One call with the client's key, its answer checked against `schema`; an error answer throws ApiError. */
  protected async call<T>(schema: z.ZodType<T>, path: string, init: RequestInit = {}): Promise<T> {
    const res = await fetch(this.baseUrl + path, {
      ...init,
      headers: {
        ...(init.body && typeof init.body === "string" ? { "content-type": "application/json" } : {}),
        ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}),
        ...(init.headers as Record<string, string> | undefined),
      },
    });
    const text = await res.text();
    if (!res.ok) {
      let code: string | null = null;
      let message = text;
      try {
        const e = JSON.parse(text).error;
        code = e?.code ?? null;
        message = e?.message ?? text;
      } catch {}
      throw new ApiError(res.status, code, `${res.status} ${message}`);
    }
    return schema.parse(JSON.parse(text));
  }

  /** Uploads a local JSONL file straight to S3 through a presigned PUT, then completes it. */
  async uploadPresigned(path: string, onBytes?: (sent: number, total: number) => void): Promise<z.infer<typeof fileSchema>> {
    const { size } = await stat(path);
    const presign = await this.call(presignSchema, "/v1/files/presign", {
      method: "POST",
      body: JSON.stringify({ filename: basename(path), purpose: "batch", bytes: size }),
    });
    let sent = 0;
    const body = createReadStream(path);
    body.on("data", (b) => {
      sent += b.length;
      onBytes?.(sent, size);
    });
    const put = await fetch(presign.upload_url, {
      method: "PUT",
      body: Readable.toWeb(body) as ReadableStream,
      headers: { "content-length": String(size) },
      duplex: "half",
    } as RequestInit);
    if (!put.ok) throw new ApiError(put.status, null, `S3 PUT failed: ${put.status} ${await put.text()}`);
    return this.call(fileSchema, `/v1/files/${presign.id}/complete`, { method: "POST" });
  }

  createBatch(args: { input_file_id: string; endpoint: string; metadata?: Record<string, string> }): Promise<Batch> {
    return this.call(batchSchema, "/v1/batches", {
      method: "POST",
      body: JSON.stringify({ ...args, completion_window: "24h" }),
    });
  }

  getBatch(id: string): Promise<Batch> {
    return this.call(batchSchema, `/v1/batches/${encodeURIComponent(id)}`);
  }

  cancelBatch(id: string): Promise<Batch> {
    return this.call(batchSchema, `/v1/batches/${encodeURIComponent(id)}/cancel`, { method: "POST" });
  }

  async listBatches(limit = 20): Promise<Batch[]> {
    return (await this.call(listSchema, `/v1/batches?limit=${limit}`)).data;
  }

  /** Streams a file's content to a local path without holding it in memory. */
  async downloadFile(fileId: string, dest: string): Promise<void> {
    const res = await fetch(`${this.baseUrl}/v1/files/${encodeURIComponent(fileId)}/content`, {
      headers: this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {},
    });
    if (!res.ok || !res.body) throw new ApiError(res.status, null, `download failed: ${res.status} ${await res.text()}`);
    await pipeline(Readable.fromWeb(res.body as import("node:stream/web").ReadableStream), createWriteStream(dest));
  }
}

/** True once a batch can change no more. */
export function isFinal(status: string): boolean {
  return isFinalBatchStatus(status);
}

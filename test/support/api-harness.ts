import { serve } from "@hono/node-server";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import { createApp, startApi, type ApiServer } from "@barge/api";
import { createTestContext, testLog, type TestContext } from "./context.js";

/** A real API over HTTP on its own schema and bucket, with an OpenAI SDK client pointed at it. */
export interface TestApi {
  ctx: TestContext;
  url: string;
  client: OpenAI;
  close(): Promise<void>;
}

/** OpenAI SDK client for a Barge URL; no retries, so every status is seen as sent. */
export function sdkClient(url: string, apiKey = "x"): OpenAI {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 });
}

/** Serves the full API (validator, sweeper, webhooks) on an existing context: a restart, or another replica. */
export function serveApi(ctx: TestContext): Promise<ApiServer> {
  return startApi({ db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, config: ctx.config, log: testLog, host: "127.0.0.1", port: 0 });
}

/** Starts the full API (validator, sweeper, webhooks) on a fresh test context. */
export async function startTestApi(overrides: Record<string, string> = {}): Promise<TestApi> {
  const ctx = await createTestContext(overrides);
  let api: ApiServer;
  try {
    api = await serveApi(ctx);
  } catch (err) {
    await ctx.close();
    throw err;
  }
  return {
    ctx,
    url: api.url,
    client: sdkClient(api.url),
    async close() {
      await api.close();
      await ctx.close();
    },
  };
}

/**
 * Serves the HTTP app alone, with no background loops: batches stay `validating` and pending
 * uploads are never swept unless a test does it.
 */
export async function startBareApi(overrides: Record<string, string> = {}): Promise<TestApi> {
  const ctx = await createTestContext(overrides);
  const app = createApp({ db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, config: ctx.config, log: testLog });
  const server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s as Server)) as Server;
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    ctx,
    url,
    client: sdkClient(url),
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await ctx.close();
    },
  };
}

/** One chat-completions request line. */
export function chatLine(customId: string, over: { model?: string; url?: string; body?: Record<string, unknown> } = {}) {
  return {
    custom_id: customId,
    method: "POST",
    url: over.url ?? "/v1/chat/completions",
    body: { model: over.model ?? "m", messages: [{ role: "user", content: `hi ${customId}` }], ...over.body },
  };
}

/** A JSONL file from objects (serialised) and raw strings (kept as they are). */
export function jsonl(lines: (object | string)[]): string {
  return lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n") + "\n";
}

/** Polls a batch until its status is one of `statuses`. */
export async function waitForBatch(client: OpenAI, id: string, statuses: string[], timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const b = await client.batches.retrieve(id);
    if (statuses.includes(b.status)) return b;
    if (Date.now() > deadline) throw new Error(`batch ${id} is ${b.status}, never reached ${statuses.join("|")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A JSON request to the API answered with its status and parsed body. */
export async function call(url: string, path: string, init: RequestInit = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url + path, init);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

/** POSTs a JSON body (a string is sent as is, for malformed bodies). */
export function postJson(url: string, path: string, body: unknown) {
  return call(url, path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

import { serve } from "@hono/node-server";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createApp } from "@barge/api";
import { createLogger } from "@barge/core";
import { call, chatLine, jsonl } from "../support/api-harness.js";
import { createTestContext, type TestContext } from "../support/context.js";

const KEY = "sk-access-log-secret";

describe("the access log", () => {
  let ctx: TestContext;
  let server: Server;
  let url: string;
  const lines: Record<string, unknown>[] = [];
  const auth = { authorization: `Bearer ${KEY}` };

  beforeAll(async () => {
    ctx = await createTestContext({ BARGE_API_KEY: KEY, BARGE_TENANT: "acme" });
    const log = createLogger("api", "info", { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    const app = createApp({ db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, config: ctx.config, log });
    server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s as Server)) as Server;
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => {
      server?.close(() => resolve());
      server?.closeIdleConnections();
    });
    await ctx?.close();
  });

  /** The request lines logged while `run` ran, without pino's own fields. */
  async function logged(run: () => Promise<unknown>) {
    const from = lines.length;
    await run();
    return lines.slice(from).map(({ method, route, status, ms, tenant, msg, level }) => ({ method, route, status, ms, tenant, msg, level }));
  }

  const line = (method: string, route: string, status: number, tenant: string | null) => ({ method, route, status, ms: expect.any(Number), tenant, msg: "request", level: 30 });

  test("a 200, a 404 and a 401 each log one line with the route pattern, status, ms and tenant", async () => {
    const form = new FormData();
    form.set("purpose", "batch");
    form.set("file", new Blob([jsonl([chatLine("a")])]), "in.jsonl");
    const created = await logged(() => call(url, "/v1/files", { method: "POST", headers: auth, body: form }));
    expect(created).toEqual([line("POST", "/v1/files", 200, "acme")]);
    const fileId = (await call(url, "/v1/files", { headers: auth })).body.data[0].id as string;

    expect(await logged(() => call(url, `/v1/files/${fileId}?after=cursor-secret`, { headers: auth }))).toEqual([line("GET", "/v1/files/:id", 200, "acme")]);
    expect(await logged(() => call(url, "/v1/batches/batch_nope", { headers: auth }))).toEqual([line("GET", "/v1/batches/:id", 404, "acme")]);
    expect(await logged(() => call(url, `/v1/batches/batch_nope/cancel`, { method: "POST", headers: { authorization: "Bearer wrong-key" } }))).toEqual([
      line("POST", "/v1/batches/:id/cancel", 401, null),
    ]);
    // No route matched: the catch-all pattern, not the raw path.
    expect(await logged(() => call(url, `/v1/nothing/${KEY}`, { headers: auth }))).toEqual([line("GET", "/v1/*", 404, "acme")]);
    expect(await logged(() => call(url, "/health"))).toEqual([line("GET", "/health", 200, null)]);
    expect(lines.every((l) => typeof l.ms === "number" && l.ms >= 0)).toBe(true);
  });

  test("no line carries the key, a path id, a query value or a body", async () => {
    await logged(() =>
      call(url, "/v1/batches?after=batch_cursorsecret", { headers: auth }).then(() =>
        call(url, "/v1/batches", { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ input_file_id: "file-bodysecret" }) }),
      ),
    );
    const text = JSON.stringify(lines);
    expect(lines.length).toBeGreaterThanOrEqual(8);
    for (const secret of [KEY, "wrong-key", "cursor-secret", "cursorsecret", "bodysecret", "batch_nope", "in.jsonl"]) expect(text).not.toContain(secret);
    expect(Object.keys(lines.at(-1)!).sort()).toEqual(["hostname", "level", "method", "ms", "msg", "name", "pid", "route", "status", "tenant", "time"]);
  });
});

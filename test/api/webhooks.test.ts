import { randomBytes } from "node:crypto";
import OpenAI, { BadRequestError, type APIError } from "openai";
import { toFile } from "openai/uploads";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { deliverWebhooks, type ApiServer } from "@barge/api";
import { loadConfig } from "@barge/core";
import { chatLine, jsonl, sdkClient, serveApi, startBareApi, type TestApi } from "../support/api-harness.js";
import { createTestContext, testLog, type TestContext } from "../support/context.js";
import { waitFor } from "../support/seed.js";
import { SECRET, startReceiver, verified } from "../support/webhook-receiver.js";

async function badFileBatch(client: OpenAI) {
  const file = await client.files.create({ file: await toFile(Buffer.from("not json\n"), "bad.jsonl"), purpose: "batch" });
  return client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
}

describe("webhooks through the background loop", () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let ctx: TestContext;
  let api: ApiServer;
  beforeAll(async () => {
    receiver = await startReceiver();
    ctx = await createTestContext({ WEBHOOK_URLS: `${receiver.url}/a, ${receiver.url}/b`, WEBHOOK_SECRET: SECRET, AGENT_POLL_MS: "50", API_POLL_MS: "50" });
    api = await serveApi(ctx);
  });
  afterAll(async () => {
    await api?.close();
    await ctx?.close();
    await receiver?.close();
  });

  test("a batch that fails validation sends one signed batch.failed event to every configured endpoint", async () => {
    const client = sdkClient(api.url);
    const batch = await badFileBatch(client);
    await waitFor("two deliveries", async () => receiver.received.length >= 2);
    expect(receiver.received.map((r) => r.path).sort()).toEqual(["/a", "/b"]);
    const events = await Promise.all(receiver.received.map((r) => verified(r)));
    const failed = await client.batches.retrieve(batch.id);
    expect(failed.status).toBe("failed");
    for (const e of events) {
      expect(e).toEqual({ id: expect.stringMatching(/^evt_[0-9a-f]{32}$/), object: "event", type: "batch.failed", created_at: expect.any(Number), data: { id: batch.id } });
    }
    expect(events[0]!.id).toBe(events[1]!.id);
    expect(receiver.received[0]!.headers["webhook-id"]).toBe(events[0]!.id);
    // The receiver records a request before the deliverer reads its answer and marks it delivered.
    const delivered = () => ctx.db.selectFrom("webhook_deliveries").select(["url", "attempts"]).where("delivered_at", "is not", null).orderBy("url").execute();
    await waitFor("both deliveries marked delivered", async () => (await delivered()).length >= 2);
    const rows = await delivered();
    expect(rows).toEqual([
      { url: `${receiver.url}/a`, attempts: 1 },
      { url: `${receiver.url}/b`, attempts: 1 },
    ]);
  });
});

describe("webhook outbox", () => {
  test("cancel, expiry and per-batch endpoints: one event per final state, fanned out to each endpoint", async () => {
    const receiver = await startReceiver();
    // The receiver is on loopback, which a batch's own webhook_url may only reach when allowed.
    const t = await startBareApi({ WEBHOOK_URLS: `${receiver.url}/all`, WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOW_PRIVATE: "true" });
    try {
      const deps = { db: t.ctx.db, config: t.ctx.config, log: testLog };
      const file = await t.client.files.create({ file: await toFile(Buffer.from(jsonl([chatLine("a")])), "in.jsonl"), purpose: "batch" });
      const create = (extra: Record<string, unknown>) =>
        t.client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", ...extra });
      const own = await create({ webhook_url: `${receiver.url}/own` });
      const viaMeta = await create({ metadata: { webhook_url: `${receiver.url}/meta`, team: "x" } });
      const expiring = await create({});

      // Without a validator these stay validating, where a cancel is final at once.
      await t.client.batches.cancel(own.id);
      await t.client.batches.cancel(viaMeta.id);
      // What the expiry path does to a batch whose completion window passed.
      await t.ctx.db.updateTable("batches").set({ status: "expired", expired_at: new Date() }).where("id", "=", expiring.id).execute();
      // A change that is not a final state sends nothing.
      await t.ctx.db.updateTable("batches").set({ priority: 5 }).where("id", "=", expiring.id).execute();

      while (await deliverWebhooks(deps));
      const got = await Promise.all(receiver.received.map(async (r) => ({ path: r.path, event: await verified(r) })));
      const seen = got.map((g) => `${g.path} ${g.event.type} ${(g.event.data as { id: string }).id}`).sort();
      expect(seen).toEqual(
        [
          `/all batch.cancelled ${own.id}`,
          `/all batch.cancelled ${viaMeta.id}`,
          `/all batch.expired ${expiring.id}`,
          `/meta batch.cancelled ${viaMeta.id}`,
          `/own batch.cancelled ${own.id}`,
        ].sort(),
      );
      expect(await t.ctx.db.selectFrom("webhook_events").select("type").execute()).toHaveLength(3);
    } finally {
      await t.close();
      await receiver.close();
    }
  });

  test("an endpoint that keeps failing is retried with backoff and given up after WEBHOOK_MAX_ATTEMPTS", async () => {
    const receiver = await startReceiver(() => 500);
    const t = await startBareApi({ WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: SECRET, WEBHOOK_MAX_ATTEMPTS: "2" });
    try {
      const deps = { db: t.ctx.db, config: t.ctx.config, log: testLog };
      const file = await t.client.files.create({ file: await toFile(Buffer.from(jsonl([chatLine("a")])), "in.jsonl"), purpose: "batch" });
      const b = await t.client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
      await t.client.batches.cancel(b.id);
      while (await deliverWebhooks(deps));
      const delivery = () => t.ctx.db.selectFrom("webhook_deliveries").selectAll().executeTakeFirstOrThrow();
      expect(await delivery()).toMatchObject({ attempts: 1, delivered_at: null, failed_at: null, last_error: "HTTP 500" });
      expect(receiver.received).toHaveLength(1);

      await t.ctx.db.updateTable("webhook_deliveries").set({ next_attempt_at: new Date(0) }).execute();
      while (await deliverWebhooks(deps));
      expect(await delivery()).toMatchObject({ attempts: 2, delivered_at: null, failed_at: expect.any(Date), last_error: "HTTP 500" });
      expect(receiver.received).toHaveLength(2);
      expect(receiver.received[1]!.headers["webhook-id"]).toBe(receiver.received[0]!.headers["webhook-id"]);
      await t.ctx.db.updateTable("webhook_deliveries").set({ next_attempt_at: new Date(0) }).execute();
      expect(await deliverWebhooks(deps)).toBe(false);
      expect(receiver.received).toHaveLength(2);
    } finally {
      await t.close();
      await receiver.close();
    }
  });

  test("a delivery that failed before an API restart is delivered by the next API, with the same id", async () => {
    const receiver = await startReceiver((n) => (n === 1 ? 503 : 200));
    const ctx = await createTestContext({ WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: SECRET, AGENT_POLL_MS: "50", API_POLL_MS: "50" });
    let api = await serveApi(ctx);
    try {
      const batch = await badFileBatch(sdkClient(api.url));
      await waitFor("the first, failed attempt to be recorded", () =>
        ctx.db.selectFrom("webhook_deliveries").selectAll().where("last_error", "=", "HTTP 503").executeTakeFirst(),
      );
      await api.close();
      expect(receiver.received).toHaveLength(1);

      api = await serveApi(ctx);
      await waitFor("the retry", async () => receiver.received.length === 2);
      const [failed, retried] = receiver.received;
      expect(retried!.headers["webhook-id"]).toBe(failed!.headers["webhook-id"]);
      expect(retried!.body).toBe(failed!.body);
      expect(await verified(retried!)).toMatchObject({ type: "batch.failed", data: { id: batch.id } });
      const row = await waitFor("the delivery to be recorded", () =>
        ctx.db.selectFrom("webhook_deliveries").selectAll().where("delivered_at", "is not", null).executeTakeFirst(),
      );
      expect(row).toMatchObject({ attempts: 2, failed_at: null });
    } finally {
      await api.close();
      await ctx.close();
      await receiver.close();
    }
  });
});

describe("internal webhook destinations", () => {
  test("a batch's own webhook_url may not name an internal host unless WEBHOOK_ALLOW_PRIVATE", async () => {
    const t = await startBareApi({ WEBHOOK_SECRET: SECRET });
    try {
      const file = await t.client.files.create({ file: await toFile(Buffer.from(jsonl([chatLine("a")])), "in.jsonl"), purpose: "batch" });
      const create = (extra: Record<string, unknown>) =>
        t.client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", ...extra }).then(
          (b) => b.id,
          (e: APIError) => [e.status, e.error] as const,
        );
      const internal = [
        "http://127.0.0.1:9/hook",
        "http://[::1]:9/x",
        "http://localhost:9/x",
        "http://LOCALHOST./x",
        "http://api.localhost/x",
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3/x",
        "https://172.20.0.1/x",
        "http://192.168.1.1/x",
        "http://[::ffff:192.168.0.1]/x",
        "http://[fd00::1]/x",
        "http://0.0.0.0:80/x",
      ];
      for (const url of internal) {
        expect(await create({ webhook_url: url })).toEqual([400, expect.objectContaining({ param: "webhook_url", code: "internal_webhook_url" })]);
      }
      expect(await create({ metadata: { webhook_url: "http://127.0.0.1:9/hook" } })).toEqual([400, expect.objectContaining({ param: "metadata", code: "internal_webhook_url" })]);
      const accepted = await create({ webhook_url: "https://hooks.example.com/barge" });
      expect(typeof accepted).toBe("string");
      expect(await t.ctx.db.selectFrom("batches").select(["id", "webhook_url"]).execute()).toEqual([{ id: accepted, webhook_url: "https://hooks.example.com/barge" }]);
    } finally {
      await t.close();
    }
  });

  test("deliveries to an internal address are refused when made, by address and as a name resolves; the operator's endpoints are not", async () => {
    const receiver = await startReceiver();
    const port = new URL(receiver.url).port;
    // Created while internal endpoints were allowed; delivered by an API where they are not.
    const t = await startBareApi({ WEBHOOK_URLS: `${receiver.url}/all`, WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOW_PRIVATE: "true" });
    try {
      const file = await t.client.files.create({ file: await toFile(Buffer.from(jsonl([chatLine("a")])), "in.jsonl"), purpose: "batch" });
      const own = (url: string): Record<string, unknown> => ({ webhook_url: url });
      const create = (url: string) => t.client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", ...own(url) });
      const byName = await create(`http://localhost:${port}/name`);
      const byAddress = await create(`${receiver.url}/address`);
      await t.client.batches.cancel(byName.id);
      await t.client.batches.cancel(byAddress.id);

      const deps = { db: t.ctx.db, config: { ...t.ctx.config, WEBHOOK_ALLOW_PRIVATE: false }, log: testLog };
      while (await deliverWebhooks(deps));
      expect(receiver.received.map((r) => r.path).sort()).toEqual(["/all", "/all"]);
      const rows = await t.ctx.db.selectFrom("webhook_deliveries").select(["url", "attempts", "delivered_at", "failed_at", "last_error"]).orderBy("url").execute();
      const row = (path: string) => rows.find((r) => r.url.endsWith(path));
      expect(rows).toHaveLength(4);
      expect(row("/name")).toMatchObject({ attempts: 1, delivered_at: null, failed_at: expect.any(Date), last_error: "refused: localhost resolves to 127.0.0.1, an internal address" });
      expect(row("/address")).toMatchObject({ attempts: 1, delivered_at: null, failed_at: expect.any(Date), last_error: "refused: 127.0.0.1 is an internal address" });
      expect(rows.filter((r) => r.url.endsWith("/all")).map((r) => [r.attempts, r.delivered_at !== null, r.failed_at])).toEqual([
        [1, true, null],
        [1, true, null],
      ]);
    } finally {
      await t.close();
      await receiver.close();
    }
  });
});

describe("webhook settings", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startBareApi();
  });
  afterAll(async () => {
    await t?.close();
  });

  test("a webhook_url needs a signing secret, and must be an http(s) URL", async () => {
    const file = await t.client.files.create({ file: await toFile(Buffer.from(jsonl([chatLine("a")])), "in.jsonl"), purpose: "batch" });
    const create = (extra: Record<string, unknown>) =>
      t.client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", ...extra }).then(
        () => null,
        (e: APIError) => e,
      );
    const unsigned = await create({ webhook_url: "http://127.0.0.1:9/hook" });
    expect(unsigned).toBeInstanceOf(BadRequestError);
    expect(unsigned!.error).toMatchObject({ param: "webhook_url", code: "webhooks_not_configured" });
    expect((await create({ metadata: { webhook_url: "http://127.0.0.1:9/hook" } }))!.error).toMatchObject({ param: "metadata", code: "webhooks_not_configured" });
    expect((await create({ webhook_url: "ftp://example.com/x" }))!.error).toMatchObject({ param: "webhook_url", code: "invalid_value" });
    expect(await t.ctx.db.selectFrom("batches").select("id").execute()).toEqual([]);
  });

  test("WEBHOOK_URLS without WEBHOOK_SECRET, or a malformed secret, fails start-up", () => {
    expect(() => loadConfig({ WEBHOOK_URLS: "http://127.0.0.1:9/hook" })).toThrow(/WEBHOOK_SECRET must be set/);
    expect(() => loadConfig({ WEBHOOK_SECRET: "not-a-secret" })).toThrow(/WEBHOOK_SECRET/);
    expect(() => loadConfig({ WEBHOOK_SECRET: `whsec_${randomBytes(8).toString("base64")}` })).toThrow(/24 to 64 bytes/);
    expect(loadConfig({ WEBHOOK_URLS: "http://a.test/x, https://b.test/y", WEBHOOK_SECRET: SECRET }).WEBHOOK_URLS).toEqual(["http://a.test/x", "https://b.test/y"]);
  });
});

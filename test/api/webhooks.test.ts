import { createHmac, randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI, { BadRequestError, type APIError } from "openai";
import { toFile } from "openai/uploads";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { deliverWebhooks, type ApiServer } from "@barge/api";
import { loadConfig } from "@barge/core";
import { chatLine, jsonl, sdkClient, serveApi, startBareApi, type TestApi } from "../support/api-harness.js";
import { createTestContext, testLog, type TestContext } from "../support/context.js";
import { waitFor } from "../support/seed.js";

const SECRET = `whsec_${randomBytes(32).toString("base64")}`;

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook endpoint on loopback that records every request and answers with `status(n)` for the n-th. */
async function startReceiver(status: (n: number) => number = () => 200) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    req.on("end", () => {
      received.push({ path: req.url ?? "", headers: req.headers, body });
      res.writeHead(status(received.length)).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Verifies a Standard Webhooks signature from scratch: HMAC-SHA256 over `id.timestamp.body`, keyed by the secret's base64 part. */
function signatureValid(r: Received, secret: string): boolean {
  const id = r.headers["webhook-id"] as string;
  const timestamp = r.headers["webhook-timestamp"] as string;
  const expected = createHmac("sha256", Buffer.from(secret.slice("whsec_".length), "base64")).update(`${id}.${timestamp}.${r.body}`).digest("base64");
  return (r.headers["webhook-signature"] as string).split(" ").some((s) => s === `v1,${expected}`);
}

/** The event after checking its signature twice: by hand, and with the openai SDK's own verifier. */
async function verified(r: Received, secret = SECRET) {
  expect(signatureValid(r, secret)).toBe(true);
  expect(signatureValid(r, `whsec_${randomBytes(32).toString("base64")}`)).toBe(false);
  const sdk = new OpenAI({ apiKey: "x", webhookSecret: secret });
  const event = await sdk.webhooks.unwrap(r.body, r.headers as Record<string, string>);
  expect(JSON.parse(r.body)).toEqual(event);
  return event;
}

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

describe("IPv6 forms of internal webhook destinations", () => {
  // The SDK's types do not know the create field.
  const ownWebhook = (url: string): Record<string, unknown> => ({ webhook_url: url });
  test("an IPv4-compatible, NAT64, 6to4 or site-local webhook_url is refused at create and, created while allowed, at delivery", async () => {
    const receiver = await startReceiver();
    const urls = ["http://[::127.0.0.1]:9/compat", "http://[64:ff9b:1::a00:1]/nat64", "http://[2002:a9fe:a9fe::1]/6to4", "http://[fec0::1]/site"];
    const strict = await startBareApi({ WEBHOOK_SECRET: SECRET });
    const lax = await startBareApi({ WEBHOOK_URLS: `${receiver.url}/all`, WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOW_PRIVATE: "true" });
    try {
      const file = await strict.client.files.create({ file: await toFile(Buffer.from(jsonl([chatLine("a")])), "in.jsonl"), purpose: "batch" });
      for (const url of urls) {
        const refused = await strict.client.batches
          .create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", ...ownWebhook(url) })
          .then(() => null, (e: APIError) => [e.status, e.error] as const);
        expect(refused).toEqual([400, expect.objectContaining({ param: "webhook_url", code: "internal_webhook_url" })]);
      }
      expect(await strict.ctx.db.selectFrom("batches").select("id").execute()).toEqual([]);

      const laxFile = await lax.client.files.create({ file: await toFile(Buffer.from(jsonl([chatLine("a")])), "in.jsonl"), purpose: "batch" });
      for (const url of urls) {
        const b = await lax.client.batches.create({ input_file_id: laxFile.id, endpoint: "/v1/chat/completions", completion_window: "24h", ...ownWebhook(url) });
        await lax.client.batches.cancel(b.id);
      }
      const deps = { db: lax.ctx.db, config: { ...lax.ctx.config, WEBHOOK_ALLOW_PRIVATE: false }, log: testLog };
      while (await deliverWebhooks(deps));
      const rows = await lax.ctx.db
        .selectFrom("webhook_deliveries")
        .select(["url", "attempts", "delivered_at", "failed_at", "last_error"])
        .where("url", "not like", `${receiver.url}%`)
        .orderBy("url")
        .execute();
      expect(rows.map((r) => [r.url, r.attempts, r.delivered_at, r.failed_at !== null, r.last_error])).toEqual([
        ["http://[2002:a9fe:a9fe::1]/6to4", 1, null, true, "refused: 2002:a9fe:a9fe::1 is an internal address"],
        ["http://[64:ff9b:1::a00:1]/nat64", 1, null, true, "refused: 64:ff9b:1::a00:1 is an internal address"],
        ["http://[::127.0.0.1]:9/compat", 1, null, true, "refused: ::7f00:1 is an internal address"],
        ["http://[fec0::1]/site", 1, null, true, "refused: fec0::1 is an internal address"],
      ]);
      expect(receiver.received.map((r) => r.path)).toEqual(["/all", "/all", "/all", "/all"]);
    } finally {
      await strict.close();
      await lax.close();
      await receiver.close();
    }
  });
});

/** A logger for the deliverer that keeps what it is told. */
function capturingLog() {
  const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
  const errors: { obj: Record<string, unknown>; msg: string }[] = [];
  const log = {
    warn: (obj: Record<string, unknown>, msg: string) => void warnings.push({ obj, msg }),
    error: (obj: Record<string, unknown>, msg: string) => void errors.push({ obj, msg }),
  };
  return { log, warnings, errors };
}

describe("webhook failures as logged and stored", () => {
  test("a failed delivery is logged and recorded without the URL's userinfo or query", async () => {
    const receiver = await startReceiver(() => 500);
    const closed = await startReceiver();
    await closed.close();
    const t = await startBareApi({ WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOW_PRIVATE: "true" });
    try {
      const file = await t.client.files.create({ file: await toFile(Buffer.from(jsonl([chatLine("a")])), "in.jsonl"), purpose: "batch" });
      const hostOf = (url: string) => url.slice("http://".length);
      const answering = `http://user:tok-1@${hostOf(receiver.url)}/p?token=secret-1`;
      const refusing = `http://:tok-2@${hostOf(closed.url)}/q?token=secret-2#frag`;
      for (const url of [answering, refusing]) {
        const own: Record<string, unknown> = { webhook_url: url };
        const b = await t.client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", ...own });
        await t.client.batches.cancel(b.id);
      }
      const { log, warnings, errors } = capturingLog();
      while (await deliverWebhooks({ db: t.ctx.db, config: t.ctx.config, log }));
      expect(errors).toEqual([]);

      expect(receiver.received.map((r) => r.path)).toEqual(["/p?token=secret-1"]);
      const logged = warnings.map((w) => [w.msg, w.obj.url, w.obj.attempts, w.obj.retryInSeconds]).sort();
      expect(logged).toEqual([
        ["webhook delivery failed", `${receiver.url}/p`, 1, 1],
        ["webhook delivery failed", `${closed.url}/q`, 1, 1],
      ].sort());
      expect(JSON.stringify(warnings)).not.toMatch(/tok-|secret-|frag/);
      const rows = await t.ctx.db.selectFrom("webhook_deliveries").select(["url", "last_error"]).execute();
      const lastError = (url: string) => rows.find((r) => r.url === url)?.last_error;
      expect(lastError(answering)).toBe("HTTP 500");
      expect(lastError(refusing)).toBe(`Error: connect ECONNREFUSED ${hostOf(closed.url)}`);
      expect(rows.map((r) => r.last_error).join(" ")).not.toMatch(/tok-|secret-|frag/);
    } finally {
      await t.close();
      await receiver.close();
    }
  });
});

/** An endpoint on loopback that accepts connections and reads requests but never answers them. */
async function startTarpit() {
  const paths: string[] = [];
  const server: Server = createServer((req) => {
    paths.push(req.url ?? "");
    req.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    paths,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe("webhook fairness between destinations", () => {
  test("endpoints that never answer hold two attempts each, and a normal endpoint queued after them is delivered meanwhile", async () => {
    const tarpit = await startTarpit();
    const receiver = await startReceiver();
    const ctx = await createTestContext({ WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOW_PRIVATE: "true", AGENT_POLL_MS: "50", API_POLL_MS: "50" });
    let api: ApiServer | undefined = await serveApi(ctx);
    try {
      const client = sdkClient(api.url);
      const file = await client.files.create({ file: await toFile(Buffer.from("not json\n"), "bad.jsonl"), purpose: "batch" });
      const failingBatch = (url: string) => {
        const own: Record<string, unknown> = { webhook_url: url };
        return client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", ...own });
      };
      const deliveries = (prefix: string) =>
        ctx.db.selectFrom("webhook_deliveries").select(["url", "attempts", "delivered_at", "failed_at", "last_error"]).where("url", "like", `${prefix}%`).orderBy("url").execute();

      for (let i = 0; i < 6; i++) await failingBatch(`${tarpit.url}/t${i}`);
      await waitFor("six tarpit deliveries queued", async () => (await deliveries(tarpit.url)).length === 6);
      await waitFor("two tarpit attempts in flight", async () => tarpit.paths.length >= 2);

      const normal = await failingBatch(`${receiver.url}/n`);
      const [delivered] = await waitFor("the normal delivery to be marked delivered", async () => {
        const rows = await deliveries(receiver.url);
        return rows.length === 1 && rows[0]!.delivered_at !== null && rows;
      });
      expect(delivered).toMatchObject({ url: `${receiver.url}/n`, attempts: 1, failed_at: null, last_error: null });
      expect(receiver.received).toHaveLength(1);
      expect(await verified(receiver.received[0]!)).toMatchObject({ type: "batch.failed", data: { id: normal.id } });

      // Still waiting on the tarpit: two attempts in flight, the other four not yet tried.
      expect(tarpit.paths).toHaveLength(2);
      const pending = await deliveries(tarpit.url);
      expect(pending.map((r) => r.attempts).sort()).toEqual([0, 0, 0, 0, 1, 1]);
      expect(pending.filter((r) => r.delivered_at !== null || r.failed_at !== null || r.last_error !== null)).toEqual([]);

      // Stopping the API ends the attempts in flight and records them, to be retried.
      await api.close();
      api = undefined;
      const stopped = await deliveries(tarpit.url);
      expect(stopped.filter((r) => r.attempts === 1).map((r) => [r.delivered_at, r.failed_at, r.last_error])).toEqual([
        [null, null, "AbortError: The operation was aborted"],
        [null, null, "AbortError: The operation was aborted"],
      ]);
    } finally {
      await api?.close();
      await ctx.close();
      await tarpit.close();
      await receiver.close();
    }
  });
});

describe("webhook attempts the database will not record", () => {
  test("an attempt whose outcome cannot be written is logged, without its URL's secrets, and does not reject", async () => {
    const receiver = await startReceiver();
    const t = await startBareApi({ WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOW_PRIVATE: "true" });
    try {
      const file = await t.client.files.create({ file: await toFile(Buffer.from(jsonl([chatLine("a")])), "in.jsonl"), purpose: "batch" });
      const own: Record<string, unknown> = { webhook_url: `${receiver.url}/p?token=secret-1` };
      const b = await t.client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", ...own });
      await t.client.batches.cancel(b.id);
      // Marking the delivery delivered now breaks a constraint: a permanent error on the write.
      await sql`ALTER TABLE webhook_deliveries ADD CONSTRAINT never_delivered CHECK (delivered_at IS NULL) NOT VALID`.execute(t.ctx.db);
      const { log, warnings, errors } = capturingLog();
      expect(await deliverWebhooks({ db: t.ctx.db, config: t.ctx.config, log })).toBe(true);

      expect(receiver.received.map((r) => r.path)).toEqual(["/p?token=secret-1"]);
      expect(warnings).toEqual([]);
      expect(errors.map((e) => [e.msg, e.obj.url, (e.obj.err as { code?: string }).code])).toEqual([["webhook attempt not recorded", `${receiver.url}/p`, "23514"]]);
      expect(await t.ctx.db.selectFrom("webhook_deliveries").select(["attempts", "delivered_at", "failed_at"]).execute()).toEqual([{ attempts: 1, delivered_at: null, failed_at: null }]);
    } finally {
      await t.close();
      await receiver.close();
    }
  });
});


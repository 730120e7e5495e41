import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { APIError } from "openai";
import { toFile } from "openai/uploads";
import { sql } from "kysely";
import { describe, expect, test } from "vitest";
import { deliverWebhooks, type ApiServer } from "@barge/api";
import { chatLine, jsonl, sdkClient, serveApi, startBareApi } from "../support/api-harness.js";
import { createTestContext, testLog } from "../support/context.js";
import { waitFor } from "../support/seed.js";
import { SECRET, startReceiver, verified } from "../support/webhook-receiver.js";

// Hostile webhook destinations: IPv6 forms of internal addresses, URLs carrying secrets, endpoints
// that never answer, and outcomes the database refuses.

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


import { HeadBucketCommand } from "@aws-sdk/client-s3";
import { serve } from "@hono/node-server";
import { randomBytes } from "node:crypto";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { createApp } from "@barge/api";
import { createS3Client, s3Settings, type S3Settings } from "@barge/core";
import { freePort, startSupervisedS3 } from "@barge/devstack";
import { describe, expect, it } from "vitest";
import { testLog, type TestContext } from "../support/context.js";
import { faultSuite } from "../support/fault-suite.js";
import { eventually, type Child } from "../support/processes.js";
import { downedPostgres, startTcpProxy } from "../support/tcp-proxy.js";

// The API process as production runs it (services/api/src/main.ts), started with a setting or a
// dependency wrong: what it answers, logs and exits with. Real Postgres and S3 throughout; an
// outage is a port where nothing listens.
const apiMain = fileURLToPath(new URL("../../services/api/src/main.ts", import.meta.url));
const quiet = { error: () => {}, warn: () => {} };

const get = async (url: string, init: RequestInit = {}) => {
  const r = await fetch(url, init);
  return { status: r.status, body: (await r.json()) as Record<string, any>, retryAfter: r.headers.get("retry-after") };
};

/** A stack trace's frame line: a start-up failure must never print one. */
const STACK_FRAME = /^\s+at /m;

describe("API start-up failures", () => {
  const suite = faultSuite();

  async function startApiProcess(ctx: TestContext, env: Record<string, string>): Promise<{ child: Child; url: string }> {
    const port = await freePort();
    const child = suite.children.start(apiMain, [], { ...ctx.env, LOG_LEVEL: "info", API_PORT: String(port), NODE_NO_WARNINGS: "1", ...env });
    return { child, url: `http://127.0.0.1:${port}` };
  }

  /** Exits with `code`, and says exactly one line (its reason) on stderr. */
  async function expectOneLineExit(child: Child, code: number): Promise<string> {
    expect(await child.exited, child.stderr()).toBe(code);
    expect(child.stderr()).not.toMatch(STACK_FRAME);
    const lines = child.stderr().split("\n").filter((l) => l !== "" && !l.startsWith("{"));
    expect(lines, child.stderr()).toHaveLength(1);
    return lines[0]!;
  }

  it("a bucket that does not exist: exits 1 naming the bucket and S3_CREATE_BUCKET", async () => {
    const ctx = await suite.context();
    const bucket = `barge-missing-${randomBytes(4).toString("hex")}`;
    const { child } = await startApiProcess(ctx, { S3_BUCKET: bucket });
    const line = await expectOneLineExit(child, 1);
    expect(line).toBe(
      `barge-api: cannot start: the S3 bucket '${bucket}' does not exist (NoSuchBucket): create it, or set S3_CREATE_BUCKET=true to let Barge create it`,
    );
  });

  it("S3_CREATE_BUCKET=true: the missing bucket is created, logged, and the API is ready", async () => {
    const ctx = await suite.context();
    const bucket = `barge-made-${randomBytes(4).toString("hex")}`;
    const { child, url } = await startApiProcess(ctx, { S3_BUCKET: bucket, S3_CREATE_BUCKET: "true" });
    const ready = await eventually("the API ready", async () => {
      const r = await get(`${url}/readyz`);
      return r.status === 200 ? r : undefined;
    });
    expect(ready.body).toEqual({ status: "ready", checks: { database: "ok", bucket: "ok" } });
    await ctx.s3.send(new HeadBucketCommand({ Bucket: bucket }));
    expect(child.logs().filter((l) => l.msg === `created the S3 bucket '${bucket}' (S3_CREATE_BUCKET=true)`)).toHaveLength(1);
    child.signal("SIGTERM");
    expect(await child.exited).toBe(0);
  });

  it("wrong S3 credentials against the signature-verifying embedded S3: exits 1 naming the key or the secret", async () => {
    const ctx = await suite.context();
    const dir = suite.tempDir("barge-startup-s3-");
    const s3 = await startSupervisedS3(dir, ["signed"], { log: quiet });
    suite.cleanup(() => s3.stop());
    const signed = { S3_ENDPOINT: s3.endpoint, S3_BUCKET: "signed" };

    const wrongKey = await startApiProcess(ctx, { ...signed, S3_ACCESS_KEY_ID: "NOSUCHKEY", S3_SECRET_ACCESS_KEY: s3.secretAccessKey });
    expect(await expectOneLineExit(wrongKey.child, 1)).toBe(
      "barge-api: cannot start: S3 does not know the access key Barge signs with (InvalidAccessKeyId): check S3_ACCESS_KEY_ID",
    );
    const wrongSecret = await startApiProcess(ctx, { ...signed, S3_ACCESS_KEY_ID: s3.accessKeyId, S3_SECRET_ACCESS_KEY: "not-the-secret" });
    expect(await expectOneLineExit(wrongSecret.child, 1)).toBe(
      "barge-api: cannot start: S3 refused the request signature (SignatureDoesNotMatch): check S3_SECRET_ACCESS_KEY",
    );
    // The right pair starts: the refusals were the credentials', not the server's.
    const right = await startApiProcess(ctx, { ...signed, S3_ACCESS_KEY_ID: s3.accessKeyId, S3_SECRET_ACCESS_KEY: s3.secretAccessKey });
    await eventually("the API ready on the right credentials", async () => (await get(`${right.url}/readyz`)).status === 200);
  });

  it("S3 with nothing listening: /readyz and every request are 503 naming it, one log line per retry, ready once S3 is back", async () => {
    const ctx = await suite.context();
    const proxy = await startTcpProxy(ctx.config.S3_ENDPOINT!);
    suite.cleanup(() => proxy.close());
    await proxy.down();
    const { child, url } = await startApiProcess(ctx, { S3_ENDPOINT: proxy.url });
    const waiting = await eventually("/readyz 503 naming S3", async () => {
      const r = await get(`${url}/readyz`);
      return r.status === 503 && r.body.reason !== "starting: checking Postgres and S3" ? r : undefined;
    });
    expect(waiting.body).toEqual({ status: "unready", reason: "starting: S3 is unreachable (ECONNREFUSED)" });
    expect(await get(`${url}/livez`)).toMatchObject({ status: 200, body: { status: "ok" } });
    const files = await get(`${url}/v1/files`);
    expect(files).toEqual({
      status: 503,
      retryAfter: "5",
      body: { error: { message: "Barge is starting and cannot serve yet: S3 is unreachable (ECONNREFUSED); retry shortly.", type: "server_error", param: null, code: "service_unavailable" } },
    });
    const retries = child.logs().filter((l) => typeof l.msg === "string" && l.msg.startsWith("waiting: "));
    expect(retries.length).toBeGreaterThanOrEqual(1);
    for (const l of retries) expect(l.msg).toMatch(/^waiting: S3 is unreachable \(ECONNREFUSED\); retrying in \d+\.\d s$/);
    expect(child.stderr()).not.toMatch(STACK_FRAME);

    await proxy.up();
    await eventually("the API ready once S3 answers", async () => (await get(`${url}/readyz`)).status === 200);
    expect(await get(`${url}/v1/files`)).toMatchObject({ status: 200, body: { object: "list", data: [] } });
    expect(child.process.exitCode).toBe(null);
  });

  it("Postgres with nothing listening: retries with one-line reasons, serves 503 meanwhile, then migrates and serves once Postgres appears", async () => {
    const ctx = await suite.context();
    const { proxy, url: proxiedUrl, port: proxiedPort } = await downedPostgres(ctx.env.DATABASE_URL!);
    suite.cleanup(() => proxy.close());
    // A schema nobody made yet: the API migrates it once Postgres answers.
    const schema = `t_late_${randomBytes(4).toString("hex")}`;
    const { child, url } = await startApiProcess(ctx, { DATABASE_URL: proxiedUrl, DATABASE_SCHEMA: schema });
    const refused = `Postgres is unreachable (connect ECONNREFUSED 127.0.0.1:${proxiedPort})`;
    await eventually("two retries logged", async () => child.logs().filter((l) => typeof l.msg === "string" && l.msg.startsWith("waiting: ")).length >= 2);
    expect(await get(`${url}/readyz`)).toMatchObject({ status: 503, body: { status: "unready", reason: `starting: ${refused}` } });
    expect(await get(`${url}/v1/batches`)).toMatchObject({ status: 503, body: { error: { code: "service_unavailable", message: `Barge is starting and cannot serve yet: ${refused}; retry shortly.` } } });
    for (const l of child.logs().filter((x) => typeof x.msg === "string" && x.msg.startsWith("waiting: "))) {
      expect(l.msg).toMatch(new RegExp(`^waiting: ${refused.replace(/[()]/g, "\\$&")}; retrying in \\d+\\.\\d s$`));
      expect(l.err).toBeUndefined();
    }
    expect(child.stderr()).not.toMatch(STACK_FRAME);

    await proxy.up();
    await eventually("the API ready once Postgres answers", async () => (await get(`${url}/readyz`)).status === 200, 30_000);
    expect(await get(`${url}/v1/batches`)).toMatchObject({ status: 200, body: { object: "list", data: [] } });
    // The schema stays, as every suite's does: a DROP SCHEMA while another suite migrates breaks
    // the migrator's catalog scan there (pg_get_serial_sequence on a vanishing schema).
  });

  it("a wrong Postgres password or database: exits 1 at once with Postgres's own words, without the URL's password", async () => {
    const ctx = await suite.context();
    const badPassword = new URL(ctx.env.DATABASE_URL!);
    badPassword.password = "not-the-password";
    const a = await startApiProcess(ctx, { DATABASE_URL: badPassword.toString() });
    const line = await expectOneLineExit(a.child, 1);
    expect(line).toBe(`barge-api: cannot start: Postgres refused the credentials in DATABASE_URL (password authentication failed for user "${badPassword.username}")`);
    expect(line).not.toContain("not-the-password");

    const noDatabase = new URL(ctx.env.DATABASE_URL!);
    noDatabase.pathname = "/no_such_database";
    const b = await startApiProcess(ctx, { DATABASE_URL: noDatabase.toString() });
    expect(await expectOneLineExit(b.child, 1)).toBe(
      'barge-api: cannot start: the database DATABASE_URL names does not exist (database "no_such_database" does not exist)',
    );
  });

  it("a non-loopback bind is refused without a key, and allowed with BARGE_API_KEY, BARGE_ADMIN_KEY or BARGE_TRUSTED_NETWORK=true", async () => {
    const ctx = await suite.context();
    const open = await startApiProcess(ctx, { API_HOST: "0.0.0.0" });
    expect(await expectOneLineExit(open.child, 1)).toBe(
      "barge-api: cannot start: refusing to serve the API on 0.0.0.0 without a key: set BARGE_API_KEY or BARGE_ADMIN_KEY, bind API_HOST=127.0.0.1, or set BARGE_TRUSTED_NETWORK=true if every client on that network is trusted",
    );
    const allowed: [Record<string, string>, number][] = [
      [{ BARGE_API_KEY: "sk-startup-test-key" }, 401],
      [{ BARGE_ADMIN_KEY: "admin-startup-test-key-0123456789" }, 401],
      [{ BARGE_TRUSTED_NETWORK: "true" }, 200],
    ];
    for (const [env, filesStatus] of allowed) {
      const { child, url } = await startApiProcess(ctx, { API_HOST: "0.0.0.0", ...env });
      await eventually(`the API ready on 0.0.0.0 with ${Object.keys(env)[0]}`, async () => (await get(`${url}/readyz`)).status === 200);
      // Without a key the keyed APIs answer 401; the trusted network's open one answers 200.
      expect((await get(`${url}/v1/files`)).status).toBe(filesStatus);
      child.signal("SIGTERM");
      expect(await child.exited).toBe(0);
    }
  });
});

describe("S3 outages at request time: 503 service_unavailable naming the reason, never 500", () => {
  const suite = faultSuite();
  const upload = (url: string) => {
    const form = new FormData();
    form.set("purpose", "batch");
    form.set("file", new Blob(['{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}\n']), "in.jsonl");
    return get(`${url}/v1/files`, { method: "POST", body: form });
  };
  const unavailable = (message: string) => ({ status: 503, retryAfter: "5", body: { error: { message, type: "server_error", param: null, code: "service_unavailable" } } });

  /** The HTTP app on the context's database, with this S3 client and bucket (no start-up checks: the outage comes later). */
  async function appWith(ctx: TestContext, s3: S3Settings, bucket = ctx.bucket): Promise<string> {
    const client = createS3Client(s3);
    suite.cleanup(async () => client.destroy());
    const app = createApp({ db: ctx.db, s3: client, bucket, config: ctx.config, log: testLog });
    const server = await new Promise<Server>((resolve) => {
      const srv = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(srv as Server)) as Server;
    });
    suite.cleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it("NoSuchBucket, an unknown key, a wrong secret and a server that is gone", async () => {
    const ctx = await suite.context();
    const own = s3Settings(ctx.config);
    const bucket = `barge-gone-${randomBytes(4).toString("hex")}`;
    const dir = suite.tempDir("barge-request-s3-");
    const signed = await startSupervisedS3(dir, [ctx.bucket], { log: quiet });
    suite.cleanup(() => signed.stop());

    const missing = await appWith(ctx, own, bucket);
    const nowhere = await appWith(ctx, { ...own, endpoint: `http://127.0.0.1:${await freePort()}` });
    const badSecret = await appWith(ctx, { ...own, endpoint: signed.endpoint, accessKeyId: signed.accessKeyId, secretAccessKey: "wrong" });
    const badKey = await appWith(ctx, { ...own, endpoint: signed.endpoint, accessKeyId: "NOSUCHKEY", secretAccessKey: "wrong" });
    const fine = await appWith(ctx, own);

    expect(await upload(missing)).toEqual(unavailable(`The S3 bucket '${bucket}' does not exist (NoSuchBucket); retry shortly.`));
    expect(await upload(nowhere)).toEqual(unavailable("S3 is unreachable (ECONNREFUSED); retry shortly."));
    expect(await upload(badSecret)).toEqual(unavailable("S3 refused the request signature (SignatureDoesNotMatch): check S3_SECRET_ACCESS_KEY; retry shortly."));
    expect(await upload(badKey)).toEqual(unavailable("S3 does not know the access key Barge signs with (InvalidAccessKeyId): check S3_ACCESS_KEY_ID; retry shortly."));
    // The same app on the right bucket and credentials stores it: each 503 above was the dependency's.
    expect((await upload(fine)).status).toBe(200);
  });
});

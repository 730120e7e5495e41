import { randomBytes } from "node:crypto";
import { PutBucketNotificationConfigurationCommand } from "@aws-sdk/client-s3";
import { CreateTopicCommand, DeleteTopicCommand, SNSClient } from "@aws-sdk/client-sns";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestContext, type TestContext } from "../support/context.js";
import { put, read, statusOf } from "../support/inbox.js";
import { chatLine } from "../support/seed.js";
import { startServices, type Services } from "../support/services.js";
import { describeStrict } from "./helpers.js";

// Serverless mode on a real bucket notification: Ceph RGW pushes its AWS-shaped Records[] events
// to POST /v1/s3-events through a topic made with RGW's SNS API (CreateTopic with an HTTP
// push-endpoint that carries the token in its query, since RGW sets no headers). No poller runs
// here: every batch below was started by a push.

const TOKEN = `rgw-events-${randomBytes(12).toString("hex")}`;
const jsonl = (lines: unknown[]) => lines.map((l) => JSON.stringify(l)).join("\n") + "\n";
const lines = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => chatLine(`${prefix}-${i}`, `hello ${i}`));

let ctx: TestContext;
let services: Services;
let sns: SNSClient;
let topicArn: string | undefined;

beforeAll(async () => {
  ctx = await createTestContext({ S3_EVENTS_TOKEN: TOKEN, API_POLL_MS: "50", AGENT_POLL_MS: "50" });
  services = await startServices(ctx);
  sns = new SNSClient({
    endpoint: ctx.config.S3_ENDPOINT,
    region: ctx.config.S3_REGION,
    credentials: { accessKeyId: ctx.config.S3_ACCESS_KEY_ID ?? "", secretAccessKey: ctx.config.S3_SECRET_ACCESS_KEY ?? "" },
  });
  const topic = await sns.send(
    new CreateTopicCommand({
      Name: `barge-inbox-${randomBytes(4).toString("hex")}`,
      Attributes: { "push-endpoint": `${services.apiUrl}/v1/s3-events?token=${TOKEN}` },
    }),
  );
  topicArn = topic.TopicArn!;
  await ctx.s3.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: ctx.bucket,
      NotificationConfiguration: {
        TopicConfigurations: [
          {
            Id: "barge-inbox",
            TopicArn: topicArn,
            Events: ["s3:ObjectCreated:*"],
            Filter: { Key: { FilterRules: [{ Name: "prefix", Value: "inbox/" }, { Name: "suffix", Value: ".jsonl" }] } },
          },
        ],
      },
    }),
  );
}, 120_000);

afterAll(async () => {
  if (topicArn) await sns.send(new DeleteTopicCommand({ TopicArn: topicArn })).catch(() => undefined);
  sns?.destroy();
  await services?.stop();
  await ctx?.close();
});

/** The batches serverless mode made for `key`, from the trigger's own record. */
const batchesOf = async (key: string) =>
  (await ctx.db.selectFrom("s3_objects").select(["batch_id", "etag"]).where("key", "=", key).execute()).map((r) => r.batch_id);

/** The push an RGW sends for `key` (its recorded shape), to replay by hand. */
const rgwPush = (key: string, etag: string, size: number) => ({
  Records: [
    {
      eventVersion: "2.2",
      eventSource: "ceph:s3",
      eventName: "ObjectCreated:Put",
      s3: { bucket: { name: ctx.bucket }, object: { key, size, eTag: etag, versionId: "" } },
    },
  ],
});

describeStrict("serverless mode on Ceph RGW bucket notifications", () => {
  it("an object pushed by RGW runs: results/<path>/ gets its output in input order and a completed status.json", async () => {
    const input = jsonl(lines("rgw", 7));
    const etag = await put(ctx, "inbox/team/run-1.jsonl", input);
    const status = await statusOf(ctx, "results/team/run-1/", ["completed", "failed"], 120_000);
    expect(status).toMatchObject({ status: "completed", request_counts: { total: 7, completed: 7, failed: 0 } });
    expect(status.metadata).toEqual({ source: "s3", input_key: "inbox/team/run-1.jsonl", input_etag: `"${etag}"` });
    const output = (await read(ctx, "results/team/run-1/output.jsonl"))!;
    expect(output.trim().split("\n").map((l) => JSON.parse(l).custom_id)).toEqual(Array.from({ length: 7 }, (_, i) => `rgw-${i}`));
    expect(await batchesOf("inbox/team/run-1.jsonl")).toEqual([status.id]);
  });

  it("a replayed event and two deliveries at once do not run the object again", async () => {
    const input = jsonl(lines("replay", 3));
    const etag = await put(ctx, "inbox/replay.jsonl", input);
    const status = await statusOf(ctx, "results/replay/", ["completed", "failed"], 120_000);
    expect(status.status).toBe("completed");
    const body = JSON.stringify(rgwPush("inbox/replay.jsonl", etag, Buffer.byteLength(input)));
    const post = () => fetch(`${services.apiUrl}/v1/s3-events?token=${TOKEN}`, { method: "POST", headers: { "content-type": "application/json" }, body });
    const answers = await Promise.all([post(), post(), post()]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    const counted = await Promise.all(answers.map(async (a) => ((await a.json()) as { received: number; new: number })));
    expect(counted).toEqual([
      { received: 1, new: 0, ignored: 0 },
      { received: 1, new: 0, ignored: 0 },
      { received: 1, new: 0, ignored: 0 },
    ]);
    expect(await batchesOf("inbox/replay.jsonl")).toEqual([status.id]);
  });

  it("refuses a wrong or missing token with 401 and starts nothing", async () => {
    const body = JSON.stringify(rgwPush("inbox/forged.jsonl", "0123456789abcdef0123456789abcdef", 10));
    for (const query of ["?token=wrong-token-0123456789", ""]) {
      const res = await fetch(`${services.apiUrl}/v1/s3-events${query}`, { method: "POST", headers: { "content-type": "application/json" }, body });
      expect(res.status).toBe(401);
    }
    expect(await batchesOf("inbox/forged.jsonl")).toEqual([]);
  });

  it("a bad file gets a failed status.json naming its lines", async () => {
    const input = `${JSON.stringify(chatLine("ok-0", "fine"))}\n{"custom_id": "broken",\n${JSON.stringify(chatLine("ok-0", "again"))}\n`;
    await put(ctx, "inbox/bad.jsonl", input);
    const status = await statusOf(ctx, "results/bad/", ["completed", "failed"], 120_000);
    expect(status.status).toBe("failed");
    expect(status.errors.data.map((e: { code: string; line: number }) => [e.code, e.line])).toEqual([
      ["invalid_json_line", 2],
      ["duplicate_custom_id", 3],
    ]);
    expect(await read(ctx, "results/bad/output.jsonl")).toBeUndefined();
  });
});

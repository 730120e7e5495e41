import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { PutBucketNotificationConfigurationCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { CreateTopicCommand, SNSClient } from "@aws-sdk/client-sns";
import { atMost, round, startBenchStack, type Benchmark, type BenchStack, type SimSettings } from "../harness.js";

// Serverless mode's reaction time: from the PutObject of a `.jsonl` under `inbox/` to its batch
// being `in_progress` (validated, chunks queued), as Postgres stamps `in_progress_at`. On Ceph RGW,
// first by push (a bucket-notification topic POSTing to /v1/s3-events), then by the poller alone
// (`TRIGGER_POLL_SECONDS`, its own prefix), each with its own API process. No agent runs: nothing past
// `in_progress` is measured.

const SIM: SimSettings = { maxNumSeqs: 16, prefillTokensPerSec: 0, decodeTokensPerSec: 0 };
const POLL_SECONDS = 2;
const LINES = 100;

/** A small valid input: LINES chat requests, distinct per object so each has its own ETag. */
function input(tag: string): string {
  return Array.from({ length: LINES }, (_, i) =>
    JSON.stringify({ custom_id: `${tag}-${i}`, method: "POST", url: "/v1/chat/completions", body: { model: "barge-sim-1", messages: [{ role: "user", content: `${tag} ${i}` }] } }),
  ).join("\n");
}

/** PUTs `<prefix><tag>.jsonl` and returns the ms from just before the PUT to its batch's `in_progress_at`. */
async function landing(stack: BenchStack, prefix: string, tag: string): Promise<number> {
  const key = `${prefix}${tag}.jsonl`;
  const t0 = Date.now();
  await stack.s3.send(new PutObjectCommand({ Bucket: stack.bucket, Key: key, Body: input(tag) }));
  const deadline = t0 + 60_000;
  for (;;) {
    const row = await stack.db
      .selectFrom("s3_objects as o")
      .innerJoin("batches as b", "b.id", "o.batch_id")
      .select(["b.in_progress_at", "b.status"])
      .where("o.key", "=", key)
      .executeTakeFirst();
    if (row?.in_progress_at) return row.in_progress_at.getTime() - t0;
    if (row && row.status !== "validating") throw new Error(`${key}: batch is ${row.status}`);
    if (Date.now() > deadline) throw new Error(`${key}: no batch in_progress after 60 s`);
    await sleep(10);
  }
}

const stats = (ms: number[]) => {
  const sorted = [...ms].sort((a, b) => a - b);
  return { p50: sorted[Math.floor(sorted.length / 2)]!, max: sorted.at(-1)!, all: ms };
};

export const landingBench: Benchmark = {
  name: "landing",
  title: "serverless mode: object landing to batch in_progress, by push and by poll (Ceph RGW)",
  async run(ctx) {
    const trials = ctx.opts.quick ? 3 : 10;
    const token = randomBytes(16).toString("hex");
    Object.assign(ctx.config, { s3: "Ceph RGW (infra/rgw/rgw.sh)", trials, lines_per_object: LINES, poll_seconds: POLL_SECONDS });
    const stack = await startBenchStack({ bench: ctx.name, opts: ctx.opts, scope: ctx.scope, workDir: ctx.workDir, sim: SIM, s3: "rgw" });

    // Push: RGW's topic posts each creation event to this API, which accepts and validates it.
    const pushApi = await stack.startApi("api-push", { S3_EVENTS_TOKEN: token, API_POLL_MS: "500" });
    const sns = new SNSClient({
      endpoint: stack.s3Endpoint.endpoint,
      region: stack.s3Endpoint.region,
      credentials: { accessKeyId: stack.s3Endpoint.accessKeyId, secretAccessKey: stack.s3Endpoint.secretAccessKey },
    });
    ctx.scope.add("sns client", async () => sns.destroy());
    const topic = await sns.send(new CreateTopicCommand({ Name: "barge-landing", Attributes: { "push-endpoint": `${pushApi.url}/v1/s3-events?token=${token}` } }));
    await stack.s3.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: stack.bucket,
        NotificationConfiguration: {
          TopicConfigurations: [{ Id: "landing", TopicArn: topic.TopicArn!, Events: ["s3:ObjectCreated:*"], Filter: { Key: { FilterRules: [{ Name: "prefix", Value: "inbox/" }] } } }],
        },
      }),
    );
    const push: number[] = [];
    for (let i = 0; i < trials; i++) push.push(await landing(stack, "inbox/", `push-${i}`));
    ctx.log(`push: ${push.join(", ")} ms`);

    // Poll: the push API gone, a second API finds objects by listing only, under a prefix the
    // bucket's notification does not cover (RGW sends its pushes during the PUT itself).
    await pushApi.service.stop();
    await stack.startApi("api-poll", { TRIGGER_POLL_SECONDS: String(POLL_SECONDS), TRIGGER_PREFIX: "polled/", API_POLL_MS: "500" });
    const poll: number[] = [];
    for (let i = 0; i < trials; i++) {
      poll.push(await landing(stack, "polled/", `poll-${i}`));
      // Spread the PUTs over the poll interval rather than just after each listing.
      await sleep(Math.round((POLL_SECONDS * 1000 * (i + 1)) / (trials + 1)) % (POLL_SECONDS * 1000));
    }
    ctx.log(`poll: ${poll.join(", ")} ms`);

    const p = stats(push);
    const q = stats(poll);
    Object.assign(ctx.figures, { push_ms: p, poll_ms: q, poll_max_over_interval: round(q.max / (POLL_SECONDS * 1000), 2) });
    return [
      atMost("push: PUT to in_progress, worst of the trials", p.max, 1000, "ms"),
      atMost("poll: PUT to in_progress, worst of the trials", q.max, POLL_SECONDS * 1000 + 1000, "ms"),
    ];
  },
};

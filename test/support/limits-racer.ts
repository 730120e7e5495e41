import { serve } from "@hono/node-server";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { createApp } from "@barge/api";
import { createDb, createLogger, createS3Client, loadConfig, s3Settings } from "@barge/core";

// One API replica in its own process, for the tenant-limits race: it serves the API on its own
// pool, prints its URL, waits for every replica's URL on stdin, then sends its share of batch
// creates (RACE_PLAN: per tenant a key, an input file and a count) to the replicas in turn, all
// at once, and prints each tenant's answers: `{"tenant": [[status, code], ...]}`.

interface Plan {
  tenant: string;
  key: string;
  fileId: string;
  count: number;
}

const config = loadConfig(process.env);
const db = createDb({ url: config.DATABASE_URL!, schema: config.DATABASE_SCHEMA, maxConnections: 8 });
const s3 = createS3Client(s3Settings(config));
const app = createApp({ db, s3, bucket: config.S3_BUCKET, config, log: createLogger("racer", "silent") });
const server = await new Promise<Server>((resolve) => {
  const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s as Server)) as Server;
});
process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })}\n`);

const lines = createInterface({ input: process.stdin });
const urls = await new Promise<string[]>((resolve) => lines.once("line", (l) => resolve((JSON.parse(l) as { urls: string[] }).urls)));
// Held open until every replica is done, so the others' requests to this one are answered.
lines.once("line", () => {
  server.close();
  server.closeIdleConnections();
  void db.destroy().then(() => process.exit(0));
});

const plan = JSON.parse(process.env.RACE_PLAN!) as Plan[];
const create = async (p: Plan, i: number): Promise<[number, string | null]> => {
  const res = await fetch(`${urls[i % urls.length]}/v1/batches`, {
    method: "POST",
    headers: { authorization: `Bearer ${p.key}`, "content-type": "application/json" },
    body: JSON.stringify({ input_file_id: p.fileId, endpoint: "/v1/chat/completions", completion_window: "24h" }),
  });
  const body = (await res.json()) as { error?: { code: string } };
  return [res.status, body.error?.code ?? null];
};
const answers = await Promise.all(plan.map(async (p) => [p.tenant, await Promise.all(Array.from({ length: p.count }, (_, i) => create(p, i)))] as const));
process.stdout.write(`${JSON.stringify(Object.fromEntries(answers))}\n`);

import { serve } from "@hono/node-server";
import { readFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createApp, type ApiDeps } from "@barge/api";
import type { LandedObject, ObjectTrigger } from "@barge/core";
import { call } from "./api-harness.js";
import { testLog, type TestContext } from "./context.js";

/** The `S3_EVENTS_TOKEN` the event suites serve with. */
export const EVENTS_TOKEN = "s3-events-token-0123456789";

/** A body of `test/fixtures/s3-events/`. */
export const eventFixture = (name: string): Record<string, any> =>
  JSON.parse(readFileSync(new URL(`../fixtures/s3-events/${name}`, import.meta.url), "utf8"));

/** The trigger's contract as the route sees it: records every hand-off, counts an object version new once. */
export class RecordingTrigger implements ObjectTrigger {
  readonly calls: LandedObject[][] = [];
  private readonly seen = new Set<string>();
  async landed(objects: LandedObject[]): Promise<number> {
    this.calls.push(objects);
    let fresh = 0;
    for (const o of objects) {
      const id = JSON.stringify([o.bucket, o.key, o.etag]);
      if (!this.seen.has(id)) fresh++;
      this.seen.add(id);
    }
    return fresh;
  }
}

/** The HTTP app alone on `ctx`, with the deps given (a trigger, an SNS fetcher, settings), on a free port. */
export async function serveEventsApp(ctx: TestContext, deps: Partial<ApiDeps>): Promise<{ url: string; close(): Promise<void> }> {
  const app = createApp({ db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, config: ctx.config, log: testLog, ...deps });
  const server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s as Server)) as Server;
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

/** POSTs to `/v1/s3-events` (JSON bodies serialized, strings and bytes sent as they are). */
export function postEvent(base: string, body: unknown, headers: Record<string, string> = {}, query = `?token=${EVENTS_TOKEN}`) {
  return call(base, `/v1/s3-events${query}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
}

/** Posts `body` and returns the answer with what it handed the trigger. */
export async function handedOn(base: string, trigger: RecordingTrigger, body: unknown, headers: Record<string, string> = {}) {
  const from = trigger.calls.length;
  const r = await postEvent(base, body, headers);
  return { status: r.status, body: r.body, objects: trigger.calls.slice(from).flat() };
}

/** The object `aws-s3-event.json` (and the SNS notification carrying it) names, its key decoded. */
export const AWS_FIXTURE_OBJECT: LandedObject = {
  bucket: "barge",
  key: "inbox/team a/report(1).jsonl",
  etag: "d41d8cd98f00b204e9800998ecf8427e",
  size: 1024,
  versionId: "096fKKXTRTtl3on89fVO.nfljtsv6qko",
};

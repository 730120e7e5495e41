import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import type { TestContext } from "./context.js";

// Serverless mode as an S3-only user sees it: objects put under the inbox, and status.json read back.

/** PUTs an object, returning its ETag without quotes (as events and listings give it). */
export async function put(ctx: TestContext, key: string, body: string, metadata: Record<string, string> = {}): Promise<string> {
  const res = await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: body, Metadata: metadata }));
  return res.ETag!.replace(/"/g, "");
}

/** An object's text, or undefined when there is none. */
export async function read(ctx: TestContext, key: string): Promise<string | undefined> {
  try {
    const res = await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key }));
    return await res.Body!.transformToString();
  } catch {
    return undefined;
  }
}

/** Polls `status.json` under a results prefix until its Batch object is in one of `statuses`. */
export async function statusOf(ctx: TestContext, prefix: string, statuses: string[], ms = 30_000): Promise<any> {
  const deadline = Date.now() + ms;
  for (;;) {
    const text = await read(ctx, `${prefix}status.json`);
    // s3rver serves an object while it is being rewritten, so a read may see half of one: poll again.
    const batch = text === undefined ? undefined : parsed(text);
    if (batch && statuses.includes(batch.status)) return batch;
    if (Date.now() > deadline) throw new Error(`${prefix}status.json is ${batch?.status ?? "absent"}, never ${statuses.join("|")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function parsed(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

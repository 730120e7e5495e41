import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { ListMultipartUploadsCommand, type S3Client } from "@aws-sdk/client-s3";
import { describe, inject } from "vitest";

export const KiB = 1024;
export const MiB = 1024 * 1024;

const s3Kind = inject("s3").kind;

/** Whether this run's S3 server enforces S3's rules (size floors, signatures); s3rver does not. */
export const strictS3 = s3Kind !== "s3rver";

/**
 * A describe block that needs a strict S3 implementation. On s3rver it is skipped, and its title
 * says why, so a skipped conformance run is visible in the report.
 */
export function describeStrict(name: string, fn: () => void): void {
  if (strictS3) describe(`${name} [${s3Kind}]`, fn);
  else describe.skip(`${name} [skipped: s3rver is lenient; needs Ceph RGW (root + apt-get), CONFORMANCE_S3_ENDPOINT or S3_ENDPOINT]`, fn);
}

export const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

/** The `<Code>` of an S3 XML error body. */
export function xmlErrorCode(body: string): string | undefined {
  return /<Error>[\s\S]*?<Code>([^<]+)<\/Code>/.exec(body)?.[1];
}

/** Polls `probe` until it returns something other than undefined, or fails after `ms`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 120_000, every = 100): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

/** Every unfinished multipart upload in a bucket, as `key:uploadId`. */
export async function listUploads(s3: S3Client, bucket: string, prefix?: string): Promise<string[]> {
  const out: string[] = [];
  let KeyMarker: string | undefined;
  let UploadIdMarker: string | undefined;
  for (;;) {
    const res = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, ...(prefix ? { Prefix: prefix } : {}), KeyMarker, UploadIdMarker }));
    for (const u of res.Uploads ?? []) out.push(`${u.Key}:${u.UploadId}`);
    if (!res.IsTruncated) return out;
    KeyMarker = res.NextKeyMarker;
    UploadIdMarker = res.NextUploadIdMarker;
  }
}

/** One S3 command as a client sent it (counted once per `send`, before the SDK's retries). */
export interface SentCommand {
  command: string;
  key?: string;
  copySource?: string;
  /** The body of PutObject / UploadPart when it was given as bytes. */
  body?: Buffer;
  contentLength?: number;
  /** The prefix of a ListObjectsV2 request. */
  prefix?: string;
  /** The part number of an UploadPart / UploadPartCopy. */
  partNumber?: number;
  /** The part numbers a CompleteMultipartUpload lists, in order. */
  parts?: number[];
}

/**
 * Records every command sent through a client, and lets a test make chosen commands fail the way
 * a crash at that point would (the request is never sent), or wait. This is how the suites
 * observe, from outside the services, whether the stitcher copied server-side or downloaded and
 * re-uploaded, and which bytes the agents wrote into each segment.
 */
export class S3Recorder {
  readonly sent: SentCommand[] = [];
  /** Return an Error to fail the command instead of sending it. */
  failWith: ((c: SentCommand) => Error | undefined) | undefined;
  /** Return a promise to hold the command until it settles. */
  holdWith: ((c: SentCommand) => Promise<void> | undefined) | undefined;

  constructor(s3: S3Client) {
    s3.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as Record<string, unknown>;
        const body = input.Body;
        const c: SentCommand = {
          command: context.commandName ?? "?",
          ...(typeof input.Key === "string" ? { key: input.Key } : {}),
          ...(typeof input.CopySource === "string" ? { copySource: decodeURIComponent(input.CopySource) } : {}),
          ...(Buffer.isBuffer(body) ? { body } : typeof body === "string" ? { body: Buffer.from(body) } : {}),
          ...(typeof input.ContentLength === "number" ? { contentLength: input.ContentLength } : {}),
        };
        if (typeof input.Prefix === "string") c.prefix = input.Prefix;
        if (typeof input.PartNumber === "number") c.partNumber = input.PartNumber;
        const listed = (input.MultipartUpload as { Parts?: { PartNumber?: number }[] } | undefined)?.Parts;
        if (listed) c.parts = listed.map((p) => p.PartNumber ?? 0);
        this.sent.push(c);
        const fail = this.failWith?.(c);
        if (fail) throw fail;
        await this.holdWith?.(c);
        return next(args);
      },
      { step: "initialize", name: "barge-test-recorder" },
    );
  }

  of(command: string, keyFilter: (key: string) => boolean = () => true): SentCommand[] {
    return this.sent.filter((c) => c.command === command && keyFilter(c.key ?? ""));
  }
}

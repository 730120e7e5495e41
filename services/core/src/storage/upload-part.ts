import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { GetObjectCommand, UploadPartCommand, UploadPartCopyCommand } from "@aws-sdk/client-s3";
import { backoffDelay } from "../backoff.js";
import type { Bucket } from "./objects.js";
import { sourceBytes, totalBytes, type PartPlan, type PartSource, type SegmentRef } from "./part-plan.js";
import { isTransient } from "./s3-errors.js";

// Sending one planned part: a concat part streams its sources through the client, a copy part is
// made server-side with UploadPartCopy.

/** GETs opened ahead of the one being streamed, so many tiny segments do not serialise on latency. */
const SOURCE_LOOKAHEAD = 4;
const PART_ATTEMPTS = 3;

function quoteEtag(etag: string): string {
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

function copySource(bucket: string, src: PartSource): { CopySource: string; CopySourceRange?: string } {
  const path = `${bucket}/${src.key.split("/").map(encodeURIComponent).join("/")}`;
  return src.range ? { CopySource: path, CopySourceRange: `bytes=${src.range.start}-${src.range.end - 1}` } : { CopySource: path };
}

async function openSource(deps: Bucket, src: PartSource, signal: AbortSignal): Promise<Readable> {
  const res = await deps.s3.send(
    new GetObjectCommand({
      Bucket: deps.bucket,
      Key: src.key,
      ...(src.range ? { Range: `bytes=${src.range.start}-${src.range.end - 1}` } : {}),
    }),
    { abortSignal: signal },
  );
  if (!(res.Body instanceof Readable)) throw new Error(`GET ${src.key} returned no body stream`);
  return res.Body;
}

/** The sources' bytes in order, with a few GETs opened ahead; fails when a source's size is not the planned one. */
export async function* readSources(deps: Bucket, sources: PartSource[], signal: AbortSignal): AsyncGenerator<Buffer> {
  const opened: Promise<Readable>[] = [];
  let next = 0;
  try {
    for (const src of sources) {
      while (next < sources.length && opened.length < SOURCE_LOOKAHEAD) {
        const p = openSource(deps, sources[next++] as PartSource, signal);
        // Rejections of GETs opened ahead surface when their turn comes; until then they must not go unhandled.
        p.catch(() => undefined);
        opened.push(p);
      }
      const body = await (opened.shift() as Promise<Readable>);
      const want = sourceBytes(src);
      let got = 0;
      for await (const chunk of body) {
        got += (chunk as Buffer).length;
        if (got > want) break;
        yield chunk as Buffer;
      }
      // The part's Content-Length was declared from the plan, so a segment that changed size must fail the part.
      if (got !== want) throw new Error(`segment ${src.key} yielded ${got > want ? "more than" : got} bytes, expected ${want}`);
    }
  } finally {
    // Responses opened ahead but never read would otherwise hold their sockets.
    for (const p of opened) p.then((b) => b.destroy(), () => undefined);
  }
}

/** Streams a concat part's sources into part `part.partNumber`, re-reading them on transient failures; returns its ETag. */
export async function uploadConcat(deps: Bucket, key: string, uploadId: string, part: PartPlan & { kind: "concat" }, signal: AbortSignal): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    // The SDK cannot replay a stream, so it does not retry streaming uploads; this loop re-reads the sources instead.
    const ctl = new AbortController();
    const cancel = () => ctl.abort();
    signal.addEventListener("abort", cancel, { once: true });
    let bodyError: unknown;
    const body = Readable.from(readSources(deps, part.sources, ctl.signal), { objectMode: false });
    // The SDK pipes the body into the request without forwarding its errors; without the abort the
    // request would wait forever for the bytes the body promised.
    body.on("error", (err) => {
      bodyError ??= err;
      ctl.abort();
    });
    try {
      const res = await deps.s3.send(
        new UploadPartCommand({ Bucket: deps.bucket, Key: key, UploadId: uploadId, PartNumber: part.partNumber, Body: body, ContentLength: part.bytes }),
        { abortSignal: ctl.signal },
      );
      if (!res.ETag) throw new Error(`UploadPart ${part.partNumber} returned no ETag`);
      return res.ETag;
    } catch (err) {
      const cause = bodyError ?? err;
      if (attempt >= PART_ATTEMPTS || signal.aborted || !isTransient(cause)) throw cause;
      await sleep(backoffDelay(attempt + 1, { base: 200, cap: Infinity }));
    } finally {
      signal.removeEventListener("abort", cancel);
      ctl.abort();
      body.destroy();
    }
  }
}

/**
 * Uploads the concatenation of `segments`, in order and streamed, as part `partNumber` of an
 * existing multipart upload; returns the part's ETag. Transient failures re-read the segments.
 */
export async function uploadSegmentsPart(
  deps: Bucket,
  args: { key: string; uploadId: string; partNumber: number; segments: SegmentRef[] },
  signal: AbortSignal = new AbortController().signal,
): Promise<string> {
  const bytes = totalBytes(args.segments);
  if (bytes === 0) throw new RangeError(`part ${args.partNumber} of ${args.key} would be empty`);
  const sources = args.segments.filter((s) => s.size > 0);
  return uploadConcat(deps, args.key, args.uploadId, { kind: "concat", partNumber: args.partNumber, sources, bytes }, signal);
}

/** Makes a copy part server-side; its ETag, or undefined when the answer carries none. */
export async function uploadCopy(deps: Bucket, key: string, uploadId: string, part: PartPlan & { kind: "copy" }, signal?: AbortSignal): Promise<string | undefined> {
  const res = await deps.s3.send(
    new UploadPartCopyCommand({ Bucket: deps.bucket, Key: key, UploadId: uploadId, PartNumber: part.partNumber, ...copySource(deps.bucket, part.source) }),
    { abortSignal: signal },
  );
  // RGW returns this ETag unquoted, unlike every other ETag it sends.
  return res.CopyPartResult?.ETag ? quoteEtag(res.CopyPartResult.ETag) : undefined;
}

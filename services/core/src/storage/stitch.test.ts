import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import S3rver from "s3rver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createS3Client, type S3Settings } from "./s3.js";
import { deleteObjects } from "./bulk-delete.js";
import { planParts, type SegmentRef } from "./part-plan.js";
import { stitch } from "./stitch.js";

const K = 1024;
const M = 1024 * 1024;

interface Target {
  settings: S3Settings;
  bucket: string;
  /** Whether the server implements UploadPartCopy. */
  copy: boolean;
  /** Whether the server implements ListMultipartUploads, so leftovers can be checked. */
  listsUploads: boolean;
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

/** Uploads segments of random content; returns them with their expected concatenation. */
async function putSegments(s3: S3Client, bucket: string, keys: string[], sizes: number[]): Promise<{ segments: SegmentRef[]; expected: Buffer }> {
  const bodies = sizes.map((n) => randomBytes(n));
  const segments = sizes.map((size, i) => ({ key: keys[i] as string, size }));
  await pool(
    segments.map((s, i) => ({ s, body: bodies[i] as Buffer })),
    16,
    async ({ s, body }) => {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: s.key, Body: body }));
    },
  );
  return { segments, expected: Buffer.concat(bodies) };
}

async function readObject(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (!res.Body) throw new Error(`no body for ${key}`);
  return Buffer.from(await res.Body.transformToByteArray());
}

async function uploadsUnder(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const res = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  return (res.Uploads ?? []).map((u) => `${u.Key}:${u.UploadId}`);
}

async function exists(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (err) {
    if ((err as { name?: string }).name === "NotFound") return false;
    throw err;
  }
}

/** Sizes from a small seeded generator, so a failure reproduces. */
function sizesBetween(count: number, lo: number, hi: number, seed: number): number[] {
  let x = seed;
  return Array.from({ length: count }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return lo + (x % (hi - lo + 1));
  });
}

const MIXED = [3 * K, 6 * M, 20 * K, 7 * M, 1 * K, 2 * K, 3 * K, 4 * K, 5 * K, 5.5 * M, 9 * K, 6 * M, 0, 700 * K];

function stitchSuite(target: () => Target) {
  const run = `stitch-test/${Date.now()}-${randomBytes(4).toString("hex")}`;
  let s3: S3Client;
  let bucket: string;
  beforeAll(() => {
    s3 = createS3Client(target().settings);
    bucket = target().bucket;
  });

  it("stitches 300 tiny segments into a byte-identical object", async () => {
    const sizes = sizesBetween(300, 2 * K, 40 * K, 7);
    const keys = sizes.map((_, i) => `${run}/tiny/seg-${String(i).padStart(4, "0")}.jsonl`);
    const { segments, expected } = await putSegments(s3, bucket, keys, sizes);
    const res = await stitch({ s3, bucket }, { segments, destKey: `${run}/tiny/out.jsonl`, contentType: "application/jsonl" });
    expect(res.bytes).toBe(expected.length);
    expect(res.parts).toBe(planParts(segments).length);
    expect(res.parts).toBeGreaterThan(1);
    expect(res.copiedParts).toBe(0);
    expect(res.etag).toMatch(/^"[0-9a-f]{32}(-\d+)?"$/);
    expect(sha256(await readObject(s3, bucket, `${run}/tiny/out.jsonl`))).toBe(sha256(expected));
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${run}/tiny/out.jsonl` }));
    expect(head.ContentType).toBe("application/jsonl");
  });

  it("stitches big and small segments, finding out about UploadPartCopy once per client", async () => {
    const client = createS3Client(target().settings);
    const keys = MIXED.map((_, i) => `${run}/mixed/seg ${i}+ü.bin`);
    const { segments, expected } = await putSegments(client, bucket, keys, MIXED);
    const planned = planParts(segments).filter((p) => p.kind === "copy").length;
    expect(planned).toBeGreaterThan(0);

    for (const [i, probes] of [[1, true], [2, false]] as const) {
      const ids: string[] = [];
      const res = await stitch({ s3: client, bucket }, { segments, destKey: `${run}/mixed/out-${i}.bin`, onUploadId: (id) => void ids.push(id) });
      expect(sha256(await readObject(client, bucket, `${run}/mixed/out-${i}.bin`))).toBe(sha256(expected));
      expect(res.bytes).toBe(expected.length);
      if (target().copy) {
        expect(res.copiedParts).toBe(planned);
        expect(ids).toHaveLength(1);
      } else {
        expect(res.copiedParts).toBe(0);
        expect(res.parts).toBe(planParts(segments, { copy: false }).length);
        // The probing stitch abandons its first upload and starts a copy-free one; later ones know.
        expect(ids).toHaveLength(probes ? 2 : 1);
      }
      expect(res.uploadId).toBe(ids.at(-1));
    }
  });

  it("concatenates only when told the server cannot copy", async () => {
    const keys = MIXED.map((_, i) => `${run}/nocopy/seg-${i}`);
    const { segments, expected } = await putSegments(s3, bucket, keys, MIXED);
    const res = await stitch({ s3, bucket }, { segments, destKey: `${run}/nocopy/out`, supportsCopy: false });
    expect(res.copiedParts).toBe(0);
    expect(res.parts).toBe(planParts(segments, { copy: false }).length);
    expect(sha256(await readObject(s3, bucket, `${run}/nocopy/out`))).toBe(sha256(expected));
  });

  it("writes an empty object when there are no bytes", async () => {
    const res = await stitch({ s3, bucket }, { segments: [{ key: `${run}/empty/never-read`, size: 0 }], destKey: `${run}/empty/out` });
    expect(res).toMatchObject({ bytes: 0, parts: 0, copiedParts: 0 });
    expect(await readObject(s3, bucket, `${run}/empty/out`)).toHaveLength(0);
  });

  it("fails on a missing segment and leaves neither an object nor an upload", async () => {
    const { segments } = await putSegments(s3, bucket, [`${run}/missing/a`], [10 * K]);
    const ids: string[] = [];
    const gone = { key: `${run}/missing/not-there`, size: 10 * K };
    await expect(
      stitch({ s3, bucket }, { segments: [...segments, gone], destKey: `${run}/missing/out`, onUploadId: (id) => void ids.push(id) }),
    ).rejects.toThrow();
    expect(ids).toHaveLength(1);
    expect(await exists(s3, bucket, `${run}/missing/out`)).toBe(false);
    if (target().listsUploads) expect(await uploadsUnder(s3, bucket, `${run}/missing/`)).toEqual([]);
  });

  it("fails when a segment is shorter than declared", async () => {
    const { segments } = await putSegments(s3, bucket, [`${run}/short/a`, `${run}/short/b`], [10 * K, 10 * K]);
    const lying = segments.map((s, i) => (i === 1 ? { ...s, size: s.size + 1 } : s));
    await expect(stitch({ s3, bucket }, { segments: lying, destKey: `${run}/short/out` })).rejects.toThrow(/short\/b yielded 10240 bytes, expected 10241/);
    expect(await exists(s3, bucket, `${run}/short/out`)).toBe(false);
  });

  it("starts afresh when asked to resume an upload that does not exist", async () => {
    const { segments, expected } = await putSegments(s3, bucket, [`${run}/stale/a`, `${run}/stale/b`], [30 * K, 40 * K]);
    const ids: string[] = [];
    const res = await stitch({ s3, bucket }, { segments, destKey: `${run}/stale/out`, uploadId: "no-such-upload", onUploadId: (id) => void ids.push(id) });
    expect(ids).toHaveLength(1);
    expect(ids[0]).not.toBe("no-such-upload");
    expect(res.reusedParts).toBe(0);
    expect(sha256(await readObject(s3, bucket, `${run}/stale/out`))).toBe(sha256(expected));
  });

  it("deletes more than one DeleteObjects batch of keys", async () => {
    const keys = Array.from({ length: 1003 }, (_, i) => `${run}/del/k${i}`);
    await putSegments(s3, bucket, keys, Array<number>(keys.length).fill(1));
    await deleteObjects({ s3, bucket }, [...keys, `${run}/del/never-existed`]);
    const left = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${run}/del/` }));
    expect(left.KeyCount ?? 0).toBe(0);
  });

  return { run, client: () => s3 };
}

describe("stitch on s3rver", () => {
  let server: S3rver;
  let dir: string;
  let port = 0;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "stitch-s3rver-"));
    server = new S3rver({ address: "127.0.0.1", port: 0, directory: dir, silent: true, configureBuckets: [{ name: "barge-test", configs: [] }] });
    port = (await server.run()).port;
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  stitchSuite(() => ({
    settings: { endpoint: `http://127.0.0.1:${port}`, region: "us-east-1", accessKeyId: "S3RVER", secretAccessKey: "S3RVER", forcePathStyle: true },
    bucket: "barge-test",
    copy: false,
    listsUploads: false,
  }));
});

const env = process.env;
describe.runIf(env.S3_ENDPOINT)(`stitch on S3_ENDPOINT (${env.S3_ENDPOINT ?? "unset"})`, () => {
  const target = (): Target => ({
    settings: {
      endpoint: env.S3_ENDPOINT,
      region: env.S3_REGION ?? "us-east-1",
      accessKeyId: env.S3_ACCESS_KEY_ID ?? "",
      secretAccessKey: env.S3_SECRET_ACCESS_KEY ?? "",
      forcePathStyle: env.S3_FORCE_PATH_STYLE !== "false",
    },
    bucket: env.S3_BUCKET ?? "barge-test",
    copy: true,
    listsUploads: true,
  });
  const { run, client } = stitchSuite(target);
  const bucket = target().bucket;

  it("resumes an interrupted upload, reusing the parts already stored", async () => {
    const s3 = client();
    // 2.5 MiB segments pair up into 5 MiB concat parts; the big ones become copy parts.
    const sizes = [...Array<number>(6).fill(2.5 * M), 6 * M, 3 * K, 6 * M, ...Array<number>(4).fill(2.5 * M)];
    const keys = sizes.map((_, i) => `${run}/resume/seg-${i}`);
    const { segments, expected } = await putSegments(s3, bucket, keys, sizes);
    const destKey = `${run}/resume/out`;
    const ids: string[] = [];
    let stored = 0;
    await expect(
      stitch(
        { s3, bucket },
        {
          segments,
          destKey,
          keepUploadOnError: true,
          onUploadId: (id) => void ids.push(id),
          onPartUploaded: () => {
            if (++stored === 2) throw new Error("simulated crash");
          },
        },
      ),
    ).rejects.toThrow("simulated crash");
    expect(ids).toHaveLength(1);
    const uploadId = ids[0] as string;
    // Parts whose requests were cancelled by the crash may still land a moment later, so wait until the listing settles.
    const countParts = async () => (await s3.send(new ListPartsCommand({ Bucket: bucket, Key: destKey, UploadId: uploadId }))).Parts?.length ?? 0;
    let before = await countParts();
    for (let settled = 0; settled < 3; ) {
      await new Promise((r) => setTimeout(r, 100));
      const now = await countParts();
      settled = now === before ? settled + 1 : 0;
      before = now;
    }
    expect(before).toBeGreaterThanOrEqual(2);
    expect(before).toBeLessThan(planParts(segments).length);

    const res = await stitch({ s3, bucket }, { segments, destKey, uploadId, onUploadId: (id) => void ids.push(id) });
    expect(ids).toHaveLength(1);
    expect(res.uploadId).toBe(uploadId);
    expect(res.reusedParts).toBe(before);
    expect(res.parts).toBe(planParts(segments).length);
    expect(sha256(await readObject(s3, bucket, destKey))).toBe(sha256(expected));
    expect(await uploadsUnder(s3, bucket, `${run}/resume/`)).toEqual([]);
  });

  it("replaces an upload holding parts the plan does not have", async () => {
    const s3 = client();
    const destKey = `${run}/extra/out`;
    const { segments, expected } = await putSegments(s3, bucket, [`${run}/extra/a`], [100 * K]);
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: destKey }));
    for (const PartNumber of [1, 2, 3]) {
      await s3.send(new UploadPartCommand({ Bucket: bucket, Key: destKey, UploadId, PartNumber, Body: randomBytes(5 * M) }));
    }
    const ids: string[] = [];
    const res = await stitch({ s3, bucket }, { segments, destKey, uploadId: UploadId, onUploadId: (id) => void ids.push(id) });
    expect(ids).toHaveLength(1);
    expect(ids[0]).not.toBe(UploadId);
    expect(sha256(await readObject(s3, bucket, destKey))).toBe(sha256(expected));
    expect(await uploadsUnder(s3, bucket, `${run}/extra/`)).toEqual([]);
  });

  it("leaves no multipart upload behind", async () => {
    expect(await uploadsUnder(client(), bucket, `${run}/`)).toEqual([]);
  });
});

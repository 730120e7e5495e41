import { createReadStream } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { readLineBlocks, readLines, validateBatchInput } from "@barge/core";
import { request } from "undici";
import {
  BENCH_LIMITS,
  atMost,
  batchTimeline,
  createBatch,
  round,
  scaled,
  span,
  startBenchStack,
  waitForBatch,
  writeChatJsonl,
  type BenchStack,
  type Benchmark,
  type SimSettings,
} from "../harness.js";

// Validation speed. A ~500 MB input (about 1 KB per request line) is uploaded once; then, in one
// run, it is read raw from S3 (a plain GET, drained) and validated by the API both ways it does
// it: POST /v1/files/{id}/complete (the upload check) and the batch validator (created ->
// in_progress). Each validation pass should cost at most 1.5x the raw read. A batch on the
// completed file reuses the upload check's record (the object is not read again); that is timed
// too, and then the record is cleared so a second batch times the validator's own full pass, as
// for a file that arrived another way. The runner also times the layers of a pass itself (split
// into lines, JSON.parse, full validation) to show where the time goes.

const SIM: SimSettings = { maxNumSeqs: 16, prefillTokensPerSec: 0, decodeTokensPerSec: 0 };
const BYTES = 500 * 1024 * 1024;
const RATIO = 1.5;

async function objectStream(stack: BenchStack, key: string): Promise<Readable> {
  const res = await stack.s3.send(new GetObjectCommand({ Bucket: stack.bucket, Key: key }));
  return res.Body as Readable;
}

/** Seconds to run `consume` over a fresh GET of the object. */
async function timed(stack: BenchStack, key: string, consume: (body: Readable) => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await consume(await objectStream(stack, key));
  return (performance.now() - t0) / 1000;
}

async function drain(body: Readable): Promise<void> {
  let n = 0;
  for await (const chunk of body) n += (chunk as Buffer).length;
  if (n === 0) throw new Error("empty object");
}

/** Seconds from a new batch on the file to `in_progress`, from the batch row's own timestamps. */
async function validatorSeconds(stack: BenchStack, apiUrl: string, fileId: string): Promise<number> {
  const batch = await createBatch(apiUrl, fileId);
  const waited = await waitForBatch(apiUrl, batch.id, { timeoutMs: 30 * 60_000, intervalMs: 200, done: (b) => b.status !== "validating" });
  if (waited.batch.status !== "in_progress") throw new Error(`batch ended validation ${waited.batch.status}: ${JSON.stringify(waited.batch.errors)}`);
  const tl = await batchTimeline(stack.db, batch.id);
  return span(tl.created, tl.inProgress) ?? NaN;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

export const validate: Benchmark = {
  name: "validate",
  title: "validation of a 500 MB input against a raw S3 GET of the same object",
  async run(ctx) {
    const maxBytes = scaled(ctx.opts, BYTES, 1024 * 1024);
    Object.assign(ctx.config, { target_bytes: maxBytes, env: BENCH_LIMITS, s3: "s3rver" });
    const stack = await startBenchStack({ bench: ctx.name, opts: ctx.opts, scope: ctx.scope, workDir: ctx.workDir, sim: SIM, env: BENCH_LIMITS });
    const input = await writeChatJsonl(join(ctx.workDir, "input.jsonl"), Number.MAX_SAFE_INTEGER, {
      promptChars: [600, 1400],
      maxTokens: [16, 64],
      system: "You are a concise assistant.",
      maxBytes,
    });
    Object.assign(ctx.figures, { input_bytes: input.bytes, input_requests: input.requests });
    const api = await stack.startApi();

    // Presigned upload, without completing yet.
    const presign = await fetch(`${api.url}/v1/files/presign`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ filename: "input.jsonl", purpose: "batch", bytes: input.bytes }),
    });
    const p = (await presign.json()) as { id: string; upload_url: string; key: string };
    const t0 = performance.now();
    const put = await request(p.upload_url, {
      method: "PUT",
      headers: { "content-length": String(input.bytes) },
      body: createReadStream(input.path),
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    await put.body.text();
    if (put.statusCode !== 200) throw new Error(`presigned PUT answered ${put.statusCode}`);
    ctx.figures.upload_put_s = round((performance.now() - t0) / 1000, 2);
    ctx.log(`uploaded ${(input.bytes / 1e6).toFixed(0)} MB, ${input.requests} requests`);

    const rawGets: number[] = [];
    rawGets.push(await timed(stack, p.key, drain));

    // 1. The upload check: POST /v1/files/{id}/complete streams and validates the whole object.
    const cpu0 = api.service.usage()?.cpuSeconds ?? 0;
    const t1 = performance.now();
    const complete = await fetch(`${api.url}/v1/files/${p.id}/complete`, { method: "POST" });
    const completeBody = await complete.text();
    if (!complete.ok) throw new Error(`complete answered ${complete.status}: ${completeBody.slice(0, 300)}`);
    const completeS = (performance.now() - t1) / 1000;
    const cpu1 = api.service.usage()?.cpuSeconds ?? 0;
    ctx.log(`complete (upload check) ${completeS.toFixed(1)} s`);
    rawGets.push(await timed(stack, p.key, drain));

    // 2. The batch validator on the completed file: the upload check's record stands in for a pass.
    const reusedS = await validatorSeconds(stack, api.url, p.id);
    ctx.log(`batch validator, reusing the upload check ${reusedS.toFixed(2)} s`);
    const cpu2 = api.service.usage()?.cpuSeconds ?? 0;

    // 3. The batch validator's own pass: the record cleared, as for a file that was never checked.
    const cleared = await stack.db.updateTable("files").set({ input_check: null }).where("id", "=", p.id).executeTakeFirst();
    if (Number(cleared.numUpdatedRows) !== 1) throw new Error("could not clear the upload check's record");
    const validatorS = await validatorSeconds(stack, api.url, p.id);
    const cpu3 = api.service.usage()?.cpuSeconds ?? 0;
    ctx.log(`batch validator ${validatorS.toFixed(1)} s`);
    rawGets.push(await timed(stack, p.key, drain));
    const raw = median(rawGets);

    // Where a pass spends its time, measured in this process over the same GET.
    const limits = { chunkSize: 5000, maxRequests: Number(BENCH_LIMITS.MAX_REQUESTS_PER_BATCH), maxBytes: Number(BENCH_LIMITS.MAX_FILE_BYTES) };
    const layers = {
      get_and_split_blocks_s: await timed(stack, p.key, async (b) => {
        for await (const _ of readLineBlocks(b));
      }),
      get_and_split_lines_s: await timed(stack, p.key, async (b) => {
        for await (const _ of readLines(b));
      }),
      get_split_and_json_parse_s: await timed(stack, p.key, async (b) => {
        for await (const line of readLines(b)) JSON.parse(line.text);
      }),
      get_and_full_validation_in_runner_s: await timed(stack, p.key, async (b) => {
        const r = await validateBatchInput(readLineBlocks(b), input.bytes, "/v1/chat/completions", limits);
        if (r.errors.length > 0) throw new Error(`validation found errors: ${JSON.stringify(r.errors[0])}`);
      }),
    };
    const completeRatio = completeS / raw;
    const validatorRatio = validatorS / raw;
    Object.assign(ctx.figures, {
      raw_get_s: rawGets.map((x) => round(x, 2)),
      raw_get_median_s: round(raw, 2),
      raw_get_mb_per_s: round(input.bytes / 1e6 / raw, 0),
      complete_s: round(completeS, 2),
      complete_mb_per_s: round(input.bytes / 1e6 / completeS, 0),
      complete_api_cpu_s: round(cpu1 - cpu0, 2),
      validator_s: round(validatorS, 2),
      validator_mb_per_s: round(input.bytes / 1e6 / validatorS, 0),
      validator_api_cpu_s: round(cpu3 - cpu2, 2),
      validator_reusing_upload_check_s: round(reusedS, 3),
      validator_reusing_upload_check_api_cpu_s: round(cpu2 - cpu1, 2),
      complete_over_raw_get: round(completeRatio, 2),
      validator_over_raw_get: round(validatorRatio, 2),
      // Drift within a run: the GET just before the upload check (right after the 500 MB PUT) is
      // the slowest of the three in most runs, and the upload check runs in that same phase.
      complete_over_preceding_get: round(completeS / rawGets[0]!, 2),
      validator_over_preceding_get: round(validatorS / rawGets[1]!, 2),
      layers_in_runner: Object.fromEntries(Object.entries(layers).map(([k, v]) => [k, round(v, 2)])),
      per_request_us: {
        validator: round((validatorS * 1e6) / input.requests, 2),
        raw_get: round((raw * 1e6) / input.requests, 2),
      },
    });
    return [
      atMost("batch validator time / raw GET time", round(validatorRatio, 2), RATIO),
      atMost("upload check (complete) time / raw GET time", round(completeRatio, 2), RATIO),
    ];
  },
};

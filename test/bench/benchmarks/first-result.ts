import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  BENCH_LIMITS,
  atMost,
  batchTimeline,
  cancelBatch,
  createBatch,
  getBatch,
  round,
  scaled,
  span,
  startBenchStack,
  uploadPresigned,
  writeChatJsonl,
  type Benchmark,
  type SimSettings,
} from "../harness.js";

// Time to first result at realistic GPU rates: engine-sim with 64 slots, prefill 5,000 tok/s and
// decode 30 tok/s per sequence; requests of ~200 output tokens (~6.7 s each). Measured from
// batch creation (POST /v1/batches) to the first committed segment (its row, written in the
// checkpoint's transaction), and to the first progress the API reports.

const SIM: SimSettings = { maxNumSeqs: 64, prefillTokensPerSec: 5_000, decodeTokensPerSec: 30 };
const LIMIT_S = 30;

export const firstResult: Benchmark = {
  name: "first-result",
  title: "batch start to the first committed segment at realistic sim rates",
  async run(ctx) {
    const requests = scaled(ctx.opts, 5_000, 1_000);
    Object.assign(ctx.config, { requests, sim: SIM, env: BENCH_LIMITS, agent_env: "defaults (AGENT_CONCURRENCY 64, AGENT_MAX_CONCURRENCY 1024, SEGMENT_MAX_LINES 1000, SEGMENT_MAX_MS 2000)" });
    const stack = await startBenchStack({ bench: ctx.name, opts: ctx.opts, scope: ctx.scope, workDir: ctx.workDir, sim: SIM, env: BENCH_LIMITS });
    const input = await writeChatJsonl(join(ctx.workDir, "input.jsonl"), requests, {
      promptChars: [400, 1200],
      maxTokens: [180, 220],
      system: "You are a concise assistant.",
    });
    const api = await stack.startApi();
    await stack.startAgent();
    const upload = await uploadPresigned(api.url, input.path);
    const batch = await createBatch(api.url, upload.fileId);
    const deadline = Date.now() + 180_000;
    let firstSegment: Date | undefined;
    let firstProgressAt: number | undefined;
    while (Date.now() < deadline && (firstSegment === undefined || firstProgressAt === undefined)) {
      if (firstSegment === undefined) {
        const row = await stack.db
          .selectFrom("segments")
          .select((eb) => eb.fn.min("created_at").as("first"))
          .where("batch_id", "=", batch.id)
          .executeTakeFirst();
        if (row?.first) firstSegment = new Date(row.first as unknown as string);
      }
      if (firstProgressAt === undefined) {
        const b = await getBatch(api.url, batch.id);
        if (b.request_counts.completed + b.request_counts.failed > 0) firstProgressAt = Date.now();
      }
      await sleep(100);
    }
    const tl = await batchTimeline(stack.db, batch.id);
    const firstS = firstSegment ? (firstSegment.getTime() - tl.created) / 1000 : null;
    Object.assign(ctx.figures, {
      upload_put_s: round(upload.putMs / 1000, 2),
      upload_complete_s: round(upload.completeMs / 1000, 2),
      validate_s: span(tl.created, tl.inProgress),
      created_to_first_segment_s: firstS === null ? null : round(firstS, 2),
      in_progress_to_first_segment_s: firstSegment && tl.inProgress ? round((firstSegment.getTime() - tl.inProgress) / 1000, 2) : null,
      created_to_first_api_progress_s: firstProgressAt === undefined ? null : round((firstProgressAt - tl.created) / 1000, 2),
      request_service_s: round((250 / SIM.prefillTokensPerSec) + 200 / SIM.decodeTokensPerSec, 2),
    });
    await cancelBatch(api.url, batch.id).catch(() => undefined);
    return [atMost("batch created -> first committed segment", firstS === null ? null : round(firstS, 2), LIMIT_S, "s")];
  },
};

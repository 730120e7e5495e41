import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Db } from "@barge/core";
import {
  BENCH_LIMITS,
  api,
  atLeast,
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
  waitForBatch,
  writeChatJsonl,
  type Benchmark,
  type SimSettings,
  type Target,
} from "../harness.js";

// Fair share (issue 18): tenant A's big batch is running when tenant B submits a small one on the
// same engine. B's time to complete is compared with B alone; while both run, each tenant's share
// of the committed requests with the share its weight gives it, and the engine's total rate with
// A's rate just before. With weights 1:1, 1:3 and 3:1 (A:B).

const SIM: SimSettings = { maxNumSeqs: 256, prefillTokensPerSec: 10_000, decodeTokensPerSec: 100 };
const TENANTS = ["bench-a", "bench-b"] as const;
/** A's rate is measured over this long before B arrives, once A has done a tenth of its batch. */
const BEFORE_WINDOW_MS = 10_000;
/** B's batch is this many chunks (CHUNK_SIZE follows), so that its claims interleave with A's by weight. */
const B_CHUNKS = 10;
/** How far B's observed share may be from the share its weight gives it. */
const SHARE_TOLERANCE = 0.1;
const WEIGHTINGS = [
  { label: "equal_weights", a: 1, b: 1 },
  { label: "weights_1_to_3", a: 1, b: 3 },
  { label: "weights_3_to_1", a: 3, b: 1 },
] as const;

/** One chunk of a batch done: when its last requests committed, and how many it holds. */
interface DoneChunk {
  at: number;
  lines: number;
}

/** A batch's completed requests over time, a chunk at a time (`chunks.done_at`, set in its last checkpoint's transaction). */
async function chunksDone(db: Db, batchId: string): Promise<DoneChunk[]> {
  const rows = await db
    .selectFrom("chunks")
    .select(["done_at", "request_count"])
    .where("batch_id", "=", batchId)
    .where("done_at", "is not", null)
    .orderBy("done_at")
    .execute();
  return rows.map((r) => ({ at: r.done_at!.getTime(), lines: r.request_count }));
}

/** Requests completed in (from, to]. */
const linesIn = (done: DoneChunk[], from: number, to: number) =>
  done.filter((c) => c.at > from && c.at <= to).reduce((n, c) => n + c.lines, 0);

/** Requests per second between the first and the last chunk done in (from, to], or null with fewer than two. */
function rateIn(done: DoneChunk[], from: number, to: number): number | null {
  const inside = done.filter((c) => c.at > from && c.at <= to);
  if (inside.length < 2) return null;
  const first = inside[0]!;
  const last = inside.at(-1)!;
  return last.at === first.at ? null : linesIn(inside, first.at, last.at) / ((last.at - first.at) / 1000);
}

const doneOf = (b: { request_counts: { completed: number; failed: number } }) => b.request_counts.completed + b.request_counts.failed;

export const fairness: Benchmark = {
  name: "fairness",
  title: "a small batch of tenant B submitted while tenant A's big batch runs: B's wait, the split by weight, A's loss",
  async run(ctx) {
    const aRequests = scaled(ctx.opts, 100_000, 2_000);
    const bRequests = scaled(ctx.opts, 5_000, 100);
    const chunkSize = Math.ceil(bRequests / B_CHUNKS);
    const adminKey = `bench-admin-${randomBytes(12).toString("hex")}`;
    const env = { ...BENCH_LIMITS, BARGE_ADMIN_KEY: adminKey, CHUNK_SIZE: String(chunkSize) };
    Object.assign(ctx.config, {
      a_requests: aRequests,
      b_requests: bRequests,
      chunk_size: chunkSize,
      sim: SIM,
      tenants: TENANTS,
      agents: 1,
      agent_env: "defaults",
      before_window_ms: BEFORE_WINDOW_MS,
      weightings: WEIGHTINGS,
    });
    const stack = await startBenchStack({ bench: ctx.name, opts: ctx.opts, scope: ctx.scope, workDir: ctx.workDir, sim: SIM, env });
    const apiProc = await stack.startApi();
    await stack.startAgent();
    const url = apiProc.url;
    const keys: Record<string, string> = {};
    for (const tenant of TENANTS) {
      keys[tenant] = (await api<{ key: string }>(url, "POST", "/v1/admin/keys", { tenant, name: "bench" }, adminKey)).key;
    }
    const [keyA, keyB] = [keys[TENANTS[0]]!, keys[TENANTS[1]]!];
    const shape = { promptChars: [150, 350] as [number, number], maxTokens: [16, 48] as [number, number], system: "You are a concise assistant." };
    const inputA = await writeChatJsonl(join(ctx.workDir, "a.jsonl"), aRequests, { ...shape, seed: 1 });
    const inputB = await writeChatJsonl(join(ctx.workDir, "b.jsonl"), bRequests, { ...shape, seed: 2 });
    const fileA = (await uploadPresigned(url, inputA.path, keyA)).fileId;
    const fileB = (await uploadPresigned(url, inputB.path, keyB)).fileId;
    const timeout = Math.max(300_000, aRequests * 10);

    /** B's batch from creation to its final status: its id and timeline. */
    const runB = async () => {
      const b = await createBatch(url, fileB, keyB);
      const { batch, timedOut } = await waitForBatch(url, b.id, { timeoutMs: timeout, intervalMs: 250, key: keyB });
      if (timedOut || batch.status !== "completed") throw new Error(`B's batch ended ${batch.status}${timedOut ? " (timed out)" : ""}`);
      return { id: b.id, timeline: await batchTimeline(stack.db, b.id) };
    };

    // The first run warms the agent's adaptive concurrency up (it starts at 64), so B alone is
    // measured on the agent as A finds it.
    ctx.log(`B alone: ${bRequests} requests in ${B_CHUNKS} chunks of ${chunkSize}, twice (the first warms the agent up)`);
    await runB();
    const alone = (await runB()).timeline;
    const aloneS = span(alone.created, alone.completed)!;
    ctx.figures.b_alone = { created_to_completed_s: round(aloneS, 2), run_s: round(span(alone.inProgress, alone.finalizing)!, 2) };

    const scenario = async (label: string, weightA: number, weightB: number) => {
      await api(url, "PUT", `/v1/admin/tenants/${TENANTS[0]}`, { weight: weightA }, adminKey);
      await api(url, "PUT", `/v1/admin/tenants/${TENANTS[1]}`, { weight: weightB }, adminKey);
      const a = await createBatch(url, fileA, keyA);
      ctx.log(`${label}: A (${aRequests} requests) created; B waits until A has done a tenth, then ${BEFORE_WINDOW_MS / 1000} s`);
      await waitForBatch(url, a.id, {
        timeoutMs: timeout,
        intervalMs: 250,
        key: keyA,
        done: (b) => doneOf(b) >= aRequests / 10 || (b.status !== "in_progress" && b.status !== "validating"),
      });
      await new Promise((resolve) => setTimeout(resolve, BEFORE_WINDOW_MS));
      const b = await runB();
      const lastA = await getBatch(url, a.id, keyA);
      const [doneA, doneB] = [await chunksDone(stack.db, a.id), await chunksDone(stack.db, b.id)];
      const t = b.timeline;
      const aBefore = rateIn(doneA, t.created - BEFORE_WINDOW_MS, t.created);
      // Both run from B's first chunk done to its last. A's chunks claimed before B arrived are
      // done by then (the agent runs its chunks in claim order), so the window holds what the
      // fair order interleaved, not A's head start.
      if (doneB.length < 2) throw new Error(`B's batch had ${doneB.length} chunk(s) done, not ${B_CHUNKS}`);
      const [from, to] = [doneB[0]!.at, doneB.at(-1)!.at];
      const bothS = (to - from) / 1000;
      const aLines = linesIn(doneA, from, to);
      const bLines = linesIn(doneB, from, to);
      const aRate = bothS > 0 ? aLines / bothS : null;
      const bRate = bothS > 0 ? bLines / bothS : null;
      const expected = weightB / (weightA + weightB);
      const bShare = aLines + bLines > 0 ? bLines / (aLines + bLines) : null;
      const withS = span(t.created, t.completed)!;
      const figures = {
        weights: { a: weightA, b: weightB },
        b_created_to_completed_s: round(withS, 2),
        b_time_vs_alone: round(withS / aloneS, 2),
        both_running_s: round(bothS, 2),
        a_requests_while_both: aLines,
        b_requests_while_both: bLines,
        b_share_expected: round(expected, 3),
        b_share: bShare === null ? null : round(bShare, 3),
        a_share: bShare === null ? null : round(1 - bShare, 3),
        b_share_error: bShare === null ? null : round(Math.abs(bShare - expected), 3),
        a_req_per_s_before: aBefore === null ? null : round(aBefore, 0),
        a_req_per_s_while_both: aRate === null ? null : round(aRate, 0),
        b_req_per_s_while_both: bRate === null ? null : round(bRate, 0),
        a_throughput_loss: aRate === null || aBefore === null ? null : round(1 - aRate / aBefore, 3),
        total_vs_a_before: aRate === null || bRate === null || aBefore === null ? null : round((aRate + bRate) / aBefore, 3),
        a_status_at_end: lastA.status,
      };
      ctx.figures[label] = figures;
      ctx.log(
        `${label}: B ${figures.b_time_vs_alone}x alone; B's share ${figures.b_share} (weights give ${figures.b_share_expected}); ` +
          `A lost ${figures.a_throughput_loss}; A+B ${figures.total_vs_a_before}x A before`,
      );
      // The rest of A is not needed: cancelled, so the next weighting starts on an idle engine.
      if (lastA.status === "in_progress") await cancelBatch(url, a.id, keyA);
      await waitForBatch(url, a.id, { timeoutMs: timeout, key: keyA });
      return figures;
    };

    const targets: Target[] = [];
    for (const w of WEIGHTINGS) {
      const f = await scenario(w.label, w.a, w.b);
      const name = `${w.a}:${w.b}`;
      if (w.a === w.b) targets.push(atMost(`B's time to complete beside A / B alone (weights ${name})`, f.b_time_vs_alone, 2, "x"));
      targets.push(atMost(`|B's share while both run - ${f.b_share_expected}| (weights ${name})`, f.b_share_error, SHARE_TOLERANCE));
      // A loses only what B took: the engine's total rate holds while B runs.
      targets.push(atLeast(`A's + B's rate while both run / A's rate before (weights ${name})`, f.total_vs_a_before, 0.9));
    }
    return targets;
  },
};

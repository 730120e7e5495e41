import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
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
// same engine. B's time to complete is compared with B alone; A's rate while B runs with A's rate
// just before, against the share B took. Once with equal weights, once with A weighted 3:1.

const SIM: SimSettings = { maxNumSeqs: 256, prefillTokensPerSec: 10_000, decodeTokensPerSec: 100 };
const TENANTS = ["bench-a", "bench-b"] as const;
/** A's rate is measured over this long before B arrives, once A has done a tenth of its batch. */
const BEFORE_WINDOW_MS = 10_000;

interface Sample {
  at: number;
  done: number;
}

/** A's committed requests at `at`, interpolated between the polls around it. */
function doneAt(samples: Sample[], at: number): number {
  const after = samples.findIndex((s) => s.at >= at);
  if (after <= 0) return (after === 0 ? samples[0] : samples.at(-1))?.done ?? 0;
  const a = samples[after - 1]!;
  const b = samples[after]!;
  return a.done + ((b.done - a.done) * (at - a.at)) / (b.at - a.at);
}

const doneOf = (b: { request_counts: { completed: number; failed: number } }) => b.request_counts.completed + b.request_counts.failed;

export const fairness: Benchmark = {
  name: "fairness",
  title: "a small batch of tenant B submitted while tenant A's big batch runs: B's wait and A's loss",
  async run(ctx) {
    const aRequests = scaled(ctx.opts, 100_000, 2_000);
    const bRequests = scaled(ctx.opts, 5_000, 100);
    const adminKey = `bench-admin-${randomBytes(12).toString("hex")}`;
    const env = { ...BENCH_LIMITS, BARGE_ADMIN_KEY: adminKey };
    Object.assign(ctx.config, { a_requests: aRequests, b_requests: bRequests, sim: SIM, tenants: TENANTS, agents: 1, agent_env: "defaults (CHUNK_SIZE 5000)", before_window_ms: BEFORE_WINDOW_MS });
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

    /** B's batch from creation to its final status; its timeline. */
    const runB = async () => {
      const b = await createBatch(url, fileB, keyB);
      const { batch, timedOut } = await waitForBatch(url, b.id, { timeoutMs: timeout, intervalMs: 250, key: keyB });
      if (timedOut || batch.status !== "completed") throw new Error(`B's batch ended ${batch.status}${timedOut ? " (timed out)" : ""}`);
      return batchTimeline(stack.db, b.id);
    };

    // The first run warms the agent's adaptive concurrency up (it starts at 64), so B alone is
    // measured on the agent as A finds it.
    ctx.log(`B alone: ${bRequests} requests, twice (the first warms the agent up)`);
    await runB();
    const alone = await runB();
    const aloneS = span(alone.created, alone.completed)!;
    ctx.figures.b_alone = { created_to_completed_s: round(aloneS, 2), run_s: round(span(alone.inProgress, alone.finalizing)!, 2) };

    const scenario = async (label: string, weightA: number, weightB: number) => {
      await api(url, "PUT", `/v1/admin/tenants/${TENANTS[0]}`, { weight: weightA }, adminKey);
      await api(url, "PUT", `/v1/admin/tenants/${TENANTS[1]}`, { weight: weightB }, adminKey);
      const a = await createBatch(url, fileA, keyA);
      ctx.log(`${label}: A (${aRequests} requests) created; B waits until A has done a tenth`);
      const samples: Sample[] = [];
      const sampleA = async () => {
        const batch = await getBatch(url, a.id, keyA);
        samples.push({ at: Date.now(), done: doneOf(batch) });
        return batch;
      };
      await waitForBatch(url, a.id, {
        timeoutMs: timeout,
        intervalMs: 250,
        key: keyA,
        done: (b) => doneOf(b) >= aRequests / 10 || (b.status !== "in_progress" && b.status !== "validating"),
      });
      const beforeStart = Date.now();
      while (Date.now() - beforeStart < BEFORE_WINDOW_MS) {
        await sampleA();
        await sleep(250);
      }
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          await sampleA();
          await sleep(250);
        }
      })();
      let b;
      try {
        b = await runB();
      } finally {
        sampling = false;
        await sampler;
      }
      const lastA = await sampleA();
      const cut = samples.filter((s) => s.at >= beforeStart);
      const first = cut[0]!;
      const arrived = b.created;
      const rateBefore = (doneAt(samples, arrived) - first.done) / ((arrived - first.at) / 1000);
      // B's run window (in_progress to finalizing), when B's chunks are on the engine.
      const runS = span(b.inProgress, b.finalizing)!;
      const aDuring = (doneAt(samples, b.finalizing!) - doneAt(samples, b.inProgress!)) / runS;
      const bDuring = bRequests / runS;
      const withS = span(b.created, b.completed)!;
      const figures = {
        weights: { a: weightA, b: weightB },
        b_created_to_completed_s: round(withS, 2),
        b_run_s: round(runS, 2),
        b_time_vs_alone: round(withS / aloneS, 2),
        a_req_per_s_before: round(rateBefore, 0),
        a_req_per_s_while_b_runs: round(aDuring, 0),
        b_req_per_s_while_running: round(bDuring, 0),
        a_throughput_loss: round(1 - aDuring / rateBefore, 3),
        b_share_while_running: round(bDuring / (aDuring + bDuring), 3),
        total_vs_a_before: round((aDuring + bDuring) / rateBefore, 3),
        a_status_at_end: lastA.status,
      };
      ctx.figures[label] = figures;
      ctx.log(`${label}: B ${figures.b_time_vs_alone}x alone; A lost ${figures.a_throughput_loss} while B held ${figures.b_share_while_running}`);
      // The rest of A is not needed: cancelled, so the next scenario starts on an idle engine.
      if (lastA.status === "in_progress") await cancelBatch(url, a.id, keyA);
      await waitForBatch(url, a.id, { timeoutMs: timeout, key: keyA });
      return figures;
    };

    const equal = await scenario("equal_weights", 1, 1);
    const weighted = await scenario("weights_3_to_1", 3, 1);
    const targets: Target[] = [
      atMost("B's time to complete beside A / B alone (equal weights)", equal.b_time_vs_alone, 2, "x"),
      // A loses only what B took: the engine's total rate holds while B runs.
      atLeast("A's + B's rate while B runs / A's rate before (equal weights)", equal.total_vs_a_before, 0.9),
      atLeast("A's + B's rate while B runs / A's rate before (weights 3:1)", weighted.total_vs_a_before, 0.9),
    ];
    return targets;
  },
};

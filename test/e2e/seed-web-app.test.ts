import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startStack, type Stack } from "@barge/devstack";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/processes.js";

// The seeds' web app (the vLLM batch server's own client) replayed with plain fetch against the
// embedded stack of `pnpm start`: it submits a multipart form whose lines name a placeholder
// model, polls, downloads /results, reads /failed and /logs, cancels with DELETE, filters the list
// by status and reads /health. This machine has no GPU: the agent finds a STAND-IN `nvidia-smi`
// first on PATH, a shell script printing one recorded CSV line, so /health has a GPU to show.

const MODEL = "google/gemma-3-4b-it";
const TOTAL = 100;
/** The line the engine-sim refuses with a 400 (its fail marker in the prompt). */
const FAILING = 17;

const dataDir = mkdtempSync(join(tmpdir(), "barge-seed-app-"));
const standInDir = mkdtempSync(join(tmpdir(), "barge-stand-in-nvidia-smi-"));
const savedPath = process.env.PATH;
let stack: Stack;

/** A JSONL file as the seeds' app writes it: every body names `gpt-4`, whatever runs it. */
function seedFile(prefix: string, total: number, failing?: number): Blob {
  const lines = Array.from({ length: total }, (_, i) => {
    const content = i + 1 === failing ? "__sim_fail_400__" : `${prefix} question ${i}`;
    return JSON.stringify({
      custom_id: `${prefix}-${i}`,
      method: "POST",
      url: "/v1/chat/completions",
      body: { model: "gpt-4", messages: [{ role: "user", content }], max_tokens: 16 },
    });
  });
  return new Blob([lines.join("\n") + "\n"]);
}

/** POST /v1/batches with the seeds' multipart form. */
async function submit(prefix: string, total: number, failing?: number): Promise<Record<string, any>> {
  const form = new FormData();
  form.set("file", seedFile(prefix, total, failing), `${prefix}.jsonl`);
  form.set("model", MODEL);
  const res = await fetch(`${stack.apiUrl}/v1/batches`, { method: "POST", body: form });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, any>;
}

const getJson = async (path: string) => (await (await fetch(`${stack.apiUrl}${path}`)).json()) as Record<string, any>;
const batch = (id: string) => getJson(`/v1/batches/${id}`);
const untilStatus = (id: string, status: string) =>
  eventually(`batch ${id} ${status}`, async () => {
    const b = await batch(id);
    return b.status === status ? b : undefined;
  });
const idsOf = (ndjson: string) => ndjson.trim().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l).custom_id as string);

beforeAll(async () => {
  const csv = join(standInDir, "gpus.csv");
  writeFileSync(csv, "0, NVIDIA H100 80GB HBM3, 93, 71234, 81559, 64, 402.17\n");
  writeFileSync(join(standInDir, "nvidia-smi"), `#!/bin/sh\n# Stand-in for nvidia-smi: prints the recorded CSV the test wrote.\ncat '${csv}'\n`);
  chmodSync(join(standInDir, "nvidia-smi"), 0o755);
  // The in-process agent looks nvidia-smi up on this process's PATH.
  process.env.PATH = `${standInDir}:${savedPath ?? ""}`;
  stack = await startStack({
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME ?? "/root",
      LOG_LEVEL: "silent",
      CHUNK_SIZE: "20",
      SEGMENT_MAX_LINES: "5",
      SEGMENT_MAX_MS: "200",
      AGENT_POLL_MS: "100",
      API_POLL_MS: "100",
    },
    dataDir,
    anyPort: true,
    // About a second per request, eight at a time: a batch runs long enough to be seen mid-run.
    sim: { models: [MODEL], decodeTokensPerSec: 8, maxNumSeqs: 8 },
  });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  process.env.PATH = savedPath;
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(standInDir, { recursive: true, force: true });
});

describe("the seeds' web app, unchanged, on the embedded stack", () => {
  let done: Record<string, any>;
  let partialBytes = "";

  it("submits a form whose lines name gpt-4; the form's model runs it, and the answer carries batch_id and total_requests", { timeout: 120_000 }, async () => {
    const created = await submit("seed", TOTAL, FAILING);
    expect(created).toMatchObject({ object: "batch", batch_id: created.id, total_requests: TOTAL, model: MODEL });

    // Mid-run (held there by a pause once some results are committed), /results is an in-order prefix.
    await eventually("some results committed", async () => ((await batch(created.id)).request_counts.completed >= 5 ? true : undefined));
    const paused = await fetch(`${stack.apiUrl}/v1/batches/${created.id}/pause`, { method: "POST" });
    expect(paused.status).toBe(200);
    const partial = await fetch(`${stack.apiUrl}/v1/batches/${created.id}/results`);
    expect([partial.status, partial.headers.get("x-barge-partial")]).toEqual([200, "true"]);
    partialBytes = await partial.text();
    const partialIds = idsOf(partialBytes);
    expect(partialIds.length).toBeGreaterThan(0);
    expect(partialIds.length).toBeLessThan(TOTAL);
    const inputOrder = Array.from({ length: TOTAL }, (_, i) => `seed-${i}`).filter((id) => id !== `seed-${FAILING - 1}`);
    expect(partialIds).toEqual(inputOrder.slice(0, partialIds.length));
    expect((await fetch(`${stack.apiUrl}/v1/batches/${created.id}/resume`, { method: "POST" })).status).toBe(200);

    done = await untilStatus(created.id, "completed");
    expect(done.progress).toEqual({ total: TOTAL, completed: TOTAL - 1, failed: 1, percent: 100 });
    expect(done.request_counts).toEqual({ total: TOTAL, completed: TOTAL - 1, failed: 1 });
  });

  it("downloads /results as NDJSON, with the seeds' filename, byte ranges, and the partial answer as its prefix", async () => {
    const res = await fetch(`${stack.apiUrl}/v1/batches/${done.id}/results`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    expect(res.headers.get("content-disposition")).toBe(`attachment; filename="${done.id}_results.jsonl"`);
    expect(res.headers.get("x-barge-partial")).toBeNull();
    const body = await res.text();
    expect(Number(res.headers.get("content-length"))).toBe(Buffer.byteLength(body));
    const lines = body.trim().split("\n").map((l) => JSON.parse(l) as Record<string, any>);
    expect(lines.map((l) => l.custom_id)).toEqual(Array.from({ length: TOTAL }, (_, i) => `seed-${i}`).filter((id) => id !== `seed-${FAILING - 1}`));
    // Every body ran on the form's model, not the placeholder the lines named.
    expect(new Set(lines.map((l) => l.response.body.model))).toEqual(new Set([MODEL]));
    expect(body.startsWith(partialBytes)).toBe(true);

    const ranged = await fetch(`${stack.apiUrl}/v1/batches/${done.id}/results`, { headers: { range: "bytes=0-99" } });
    expect([ranged.status, ranged.headers.get("content-range")]).toEqual([206, `bytes 0-99/${Buffer.byteLength(body)}`]);
    expect(await ranged.text()).toBe(Buffer.from(body).subarray(0, 100).toString());
  });

  it("lists the failed request under /failed, the same as /errors", async () => {
    const failed = await getJson(`/v1/batches/${done.id}/failed`);
    expect(failed).toEqual(await getJson(`/v1/batches/${done.id}/errors`));
    expect(failed.data).toHaveLength(1);
    expect(failed.data[0]).toMatchObject({ custom_id: `seed-${FAILING - 1}`, line: FAILING, status_code: 400 });
  });

  it("shows the batch's timeline under /logs, as a list and as text", async () => {
    const logs = await getJson(`/v1/batches/${done.id}/logs?limit=1000`);
    expect(logs.object).toBe("list");
    expect(logs.has_more).toBe(false);
    const kinds: string[] = logs.data.map((e: { kind: string }) => e.kind);
    expect(kinds.slice(0, 2)).toEqual(["created", "validated"]);
    expect(kinds.filter((k) => k === "paused")).toHaveLength(1);
    expect(kinds.filter((k) => k === "resumed")).toHaveLength(1);
    // Five chunks of 20: one claim each, plus one more for each chunk the pause handed back.
    const claims = kinds.filter((k) => k === "chunk_claimed").length;
    const handedBack = logs.data.filter((e: { kind: string; data: { reason?: string } }) => e.kind === "chunk_retried" && e.data.reason === "paused").length;
    expect(claims).toBe(5 + handedBack);
    expect(kinds.slice(-2)).toEqual(["finalizing", "final"]);
    expect(logs.data.at(-1).data).toMatchObject({ status: "completed", total: TOTAL, completed: TOTAL - 1, failed: 1 });
    expect(logs.data.find((e: { kind: string }) => e.kind === "validated").data).toMatchObject({ lines: TOTAL, chunks: 5 });

    const text = await fetch(`${stack.apiUrl}/v1/batches/${done.id}/logs?format=text&limit=1000`);
    expect(text.headers.get("content-type")).toMatch(/^text\/plain/);
    const rows = (await text.text()).trim().split("\n");
    expect(rows).toHaveLength(kinds.length);
    expect(rows.map((r) => r.split(" ")[1])).toEqual(kinds);
  });

  it("cancels with DELETE (twice: the same answer), and filters the list by status", { timeout: 60_000 }, async () => {
    const created = await submit("gone", 200);
    const first = await fetch(`${stack.apiUrl}/v1/batches/${created.id}`, { method: "DELETE" });
    expect(first.status).toBe(200);
    expect(["cancelling", "cancelled"]).toContain(((await first.json()) as { status: string }).status);
    const cancelled = await untilStatus(created.id, "cancelled");
    const again = await fetch(`${stack.apiUrl}/v1/batches/${created.id}`, { method: "DELETE" });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { status: string; cancelled_at: number }).cancelled_at).toBe(cancelled.cancelled_at);

    const completed = await getJson("/v1/batches?status=completed&limit=10");
    expect(completed.data.map((b: { id: string }) => b.id)).toEqual([done.id]);
    const either = await getJson("/v1/batches?status=completed,cancelled&limit=10");
    expect(either.data.map((b: { id: string }) => b.id)).toEqual([created.id, done.id]);
    const bad = await fetch(`${stack.apiUrl}/v1/batches?status=finished`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe("status");
  });

  it("reads /health as the seeds show it: status, the stand-in GPU, the worker, the queue and the limits", async () => {
    const health = await eventually("the agent's GPU reading", async () => {
      const h = await getJson("/health");
      return h.gpu?.length === 1 ? h : undefined;
    });
    expect(health.status).toBe("healthy");
    expect(health.reasons).toEqual([]);
    expect(health.gpu[0]).toMatchObject({
      index: 0,
      name: "NVIDIA H100 80GB HBM3",
      utilization_percent: 93,
      memory_used_mib: 71234,
      memory_total_mib: 81559,
      temperature_c: 64,
      power_w: 402.17,
      healthy: true,
    });
    expect(health.workers).toHaveLength(1);
    expect(health.workers[0]).toMatchObject({ models: [MODEL], status: "idle", paused_reason: null, current_batch_ids: [] });
    expect(health.gpu[0].agent_id).toBe(health.workers[0].id);
    expect(health.queue).toMatchObject({ active_jobs: 0, max_queue_depth: 1000, queue_available: true, total_queued_requests: 0 });
    expect(health.limits).toEqual({ max_requests_per_job: 200_000, max_queue_depth: 1000, max_total_queued_requests: 10_000_000, max_file_bytes: 500 * 1024 * 1024 });
    expect((await fetch(`${stack.apiUrl}/livez`)).status).toBe(200);
    expect((await fetch(`${stack.apiUrl}/readyz`)).status).toBe(200);
  });
});

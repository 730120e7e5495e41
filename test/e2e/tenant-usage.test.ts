import { createHash } from "node:crypto";
import type OpenAI from "openai";
import { toFile } from "openai/uploads";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { keys } from "@barge/core";
import { call, chatLine, jsonl, sdkClient, waitForBatch } from "../support/api-harness.js";
import { createTestContext, type TestContext } from "../support/context.js";
import { parseJsonl } from "../support/results.js";
import { readObject } from "../support/seed.js";
import { startServices, type Services } from "../support/services.js";

// Three tenants, each with its own key, run real batches through the API, two agents and
// engine-sim (some lines answered 400, two models). The admin's usage route must then add up,
// per tenant and per model, to exactly what the output lines' `response.body.usage` and the
// finalizer's manifests say.

const ADMIN = "admin-key-usage-0123456789";
const FAIL = "__sim_fail_400__";
const TENANTS = ["team-a", "team-b", "team-c"] as const;

/** What a batch cost, by its result files and by its manifest. */
interface Cost {
  tenant: string;
  model: string;
  completed: number;
  failed: number;
  input: number;
  output: number;
  cached: number;
}

/** The batches each tenant submits: `[model, lines, of which answered 400]`. */
const PLAN: Record<(typeof TENANTS)[number], [string, number, number][]> = {
  "team-a": [["barge-sim-1", 7, 0]],
  "team-b": [["barge-sim-1", 5, 2]],
  "team-c": [
    ["barge-sim-2", 4, 1],
    ["barge-sim-1", 3, 0],
  ],
};

let ctx: TestContext;
let services: Services;
const costs: Cost[] = [];
const manifests: Cost[] = [];

/** One tenant key, stored as the admin route would store it (hash only). */
async function addKey(tenant: string): Promise<string> {
  const key = `sk-${tenant}-secret`;
  const hash = createHash("sha256").update(key).digest("hex");
  await ctx.db.insertInto("api_keys").values({ id: `key_${tenant}`, tenant, name: "usage", key_hash: hash, redacted: `sk-…${key.slice(-4)}`, revoked_at: null }).execute();
  return key;
}

async function runBatch(client: OpenAI, tenant: string, [model, lines, failing]: [string, number, number], n: number): Promise<void> {
  // Prompts of different lengths, so every batch has its own token counts.
  const requests = Array.from({ length: lines }, (_, i) =>
    chatLine(`${tenant}-${n}-${i}`, { model, body: { messages: [{ role: "user", content: `${i < failing ? FAIL : ""} ${"word ".repeat(i + n)}` }], max_tokens: 3 + i } }),
  );
  const file = await client.files.create({ file: await toFile(Buffer.from(jsonl(requests)), `${tenant}-${n}.jsonl`), purpose: "batch" });
  const created = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
  const batch = await waitForBatch(client, created.id, ["completed"], 60_000);
  const output = parseJsonl(await (await client.files.content(batch.output_file_id!)).text());
  const errors = batch.error_file_id ? parseJsonl(await (await client.files.content(batch.error_file_id)).text()) : [];
  expect([output.length, errors.length]).toEqual([lines - failing, failing]);
  const usage = output.map((l) => l.response!.body.usage as { prompt_tokens: number; completion_tokens: number; prompt_tokens_details?: { cached_tokens?: number } });
  costs.push({
    tenant,
    model,
    completed: output.length,
    failed: errors.length,
    input: usage.reduce((s, u) => s + u.prompt_tokens, 0),
    output: usage.reduce((s, u) => s + u.completion_tokens, 0),
    cached: usage.reduce((s, u) => s + (u.prompt_tokens_details?.cached_tokens ?? 0), 0),
  });
  const manifest = JSON.parse(await readObject(ctx, keys.manifest(tenant, batch.id))) as {
    request_counts: { completed: number; failed: number };
    usage: { input_tokens: number; output_tokens: number; input_tokens_details: { cached_tokens: number } };
  };
  manifests.push({
    tenant,
    model,
    completed: manifest.request_counts.completed,
    failed: manifest.request_counts.failed,
    input: manifest.usage.input_tokens,
    output: manifest.usage.output_tokens,
    cached: manifest.usage.input_tokens_details.cached_tokens,
  });
}

beforeAll(async () => {
  ctx = await createTestContext({ BARGE_ADMIN_KEY: ADMIN, CHUNK_SIZE: "3", SEGMENT_MAX_LINES: "2", API_POLL_MS: "50", AGENT_POLL_MS: "50" });
  services = await startServices(ctx, { sim: { models: ["barge-sim-1", "barge-sim-2"] }, agents: 2 });
  await Promise.all(
    TENANTS.map(async (tenant) => {
      const client = sdkClient(services.apiUrl, await addKey(tenant));
      for (const [n, plan] of PLAN[tenant].entries()) await runBatch(client, tenant, plan, n);
    }),
  );
}, 180_000);

afterAll(async () => {
  await services?.stop();
  await ctx?.close();
});

/** Sums by key, for the three sources to be compared alike. */
function sumBy(rows: Cost[], key: (c: Cost) => string): Record<string, Omit<Cost, "tenant" | "model">> {
  const out: Record<string, Omit<Cost, "tenant" | "model">> = {};
  for (const r of rows) {
    const s = (out[key(r)] ??= { completed: 0, failed: 0, input: 0, output: 0, cached: 0 });
    s.completed += r.completed;
    s.failed += r.failed;
    s.input += r.input;
    s.output += r.output;
    s.cached += r.cached;
  }
  return out;
}

interface UsageResult {
  project_id: string;
  model: string | null;
  num_model_requests: number;
  failed_requests: number;
  input_tokens: number;
  output_tokens: number;
  input_cached_tokens: number;
  batch: boolean;
}

/** The usage route's results over every bucket, as costs. */
async function usageCosts(query: string): Promise<Cost[]> {
  const r = await call(services.apiUrl, `/v1/admin/usage${query}`, { headers: { authorization: `Bearer ${ADMIN}` } });
  expect(r.status).toBe(200);
  return (r.body.data as { results: UsageResult[] }[]).flatMap((b) =>
    b.results.map((x) => {
      expect(x.batch).toBe(true);
      return { tenant: x.project_id, model: x.model ?? "", completed: x.num_model_requests, failed: x.failed_requests, input: x.input_tokens, output: x.output_tokens, cached: x.input_cached_tokens };
    }),
  );
}

describe("usage per tenant and day, from the committed usage", () => {
  test("each tenant's sums equal its output lines' usage and its manifests, exactly", async () => {
    const byTenant = (c: Cost) => c.tenant;
    const fromLines = sumBy(costs, byTenant);
    expect(Object.keys(fromLines).sort()).toEqual([...TENANTS]);
    expect(fromLines["team-b"]!.failed).toBe(2);
    expect(fromLines["team-a"]!.input).toBeGreaterThan(0);
    expect(sumBy(manifests, byTenant)).toEqual(fromLines);
    expect(sumBy(await usageCosts(""), byTenant)).toEqual(fromLines);
  });

  test("group_by=model splits a tenant by model; tenant= shows one tenant alone", async () => {
    const byTenantModel = (c: Cost) => `${c.tenant}/${c.model}`;
    expect(sumBy(await usageCosts("?group_by=model"), byTenantModel)).toEqual(sumBy(costs, byTenantModel));
    const teamC = await usageCosts("?tenant=team-c&group_by=model");
    expect(sumBy(teamC, byTenantModel)).toEqual(sumBy(costs.filter((c) => c.tenant === "team-c"), byTenantModel));
    expect(new Set(teamC.map((c) => c.model))).toEqual(new Set(["barge-sim-1", "barge-sim-2"]));
  });

  test("a day range without the commits' day shows none of them", async () => {
    const today = Math.floor(Date.now() / 86_400_000) * 86_400;
    expect(await usageCosts(`?start_time=${today - 3 * 86_400}&end_time=${today - 86_400}`)).toEqual([]);
  });

  test("a tenant key is refused the usage route", async () => {
    const r = await call(services.apiUrl, "/v1/admin/usage", { headers: { authorization: "Bearer sk-team-a-secret" } });
    expect([r.status, r.body.error.code]).toEqual([403, "admin_key_required"]);
  });
});

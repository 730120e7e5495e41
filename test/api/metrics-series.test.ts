import { chmodSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { freePort } from "@barge/devstack";
import { serveApi, sdkClient } from "../support/api-harness.js";
import { prometheusTools, startPrometheus } from "../support/prometheus.js";
import { eventually } from "../support/processes.js";
import { chatLine, seedBatch, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

const INFRA = resolve(import.meta.dirname, "../../infra");
const DASHBOARDS = join(INFRA, "grafana/dashboards");
const RULES = join(INFRA, "prometheus/rules/barge.rules.yml");

interface Panel {
  title: string;
  targets?: { expr: string }[];
}

/** Every query of every dashboard panel, named by dashboard and panel. */
const panelQueries = readdirSync(DASHBOARDS)
  .filter((f) => f.endsWith(".json"))
  .flatMap((f) => {
    const dash = JSON.parse(readFileSync(join(DASHBOARDS, f), "utf8")) as { title: string; panels: Panel[] };
    return dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `${dash.title} / ${p.title}`, expr: t.expr })));
  });
const ruleQueries = (parse(readFileSync(RULES, "utf8")) as { groups: { rules: { alert: string; expr: string }[] }[] }).groups.flatMap((g) =>
  g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })),
);

/** The Barge and vLLM series a query reads. */
const seriesIn = (expr: string) => [...expr.matchAll(/\b(barge_[a-z0-9_]+|vllm:[a-z0-9_:]+)/g)].map((m) => m[1]!);

/** The sample names of an exposition (histogram buckets and sums included). */
const sampleNames = (text: string) => new Set(text.split("\n").filter((l) => l !== "" && !l.startsWith("#")).map((l) => /^[^{ ]+/.exec(l)![0]));

/** Who serves a series: the agent its own and the GPU readings, the engine vLLM's, the API the rest. */
const source = (name: string) => (name.startsWith("vllm:") ? "engine" : name.startsWith("barge_agent_") || name.startsWith("barge_gpu_") ? "agent" : "api");

const tools = prometheusTools();

describe("every barge_* and vllm:* series a dashboard panel or an alert queries exists in the real expositions", () => {
  const suite = suiteResources();

  it("the dashboards and rules read the series this test checks", () => {
    expect(panelQueries.length).toBeGreaterThanOrEqual(28);
    expect(ruleQueries.map((q) => q.where)).toHaveLength(6);
    const read = new Set([...panelQueries, ...ruleQueries].flatMap((q) => seriesIn(q.expr)));
    // The figures the operations issue asks for, the GPU readings the heat alert needs, and vLLM's own.
    for (const name of [
      "barge_batches",
      "barge_queued_requests",
      "barge_live_agents",
      "barge_oldest_waiting_batch_seconds",
      "barge_requests_total",
      "barge_tokens_total",
      "barge_http_requests_total",
      "barge_http_request_duration_seconds_bucket",
      "barge_gpu_temperature_celsius",
      "barge_gpu_temperature_limit_celsius",
      "barge_agent_chunks_rescued_total",
      "vllm:num_requests_running",
      "vllm:num_requests_waiting",
      "vllm:kv_cache_usage_perc",
      "vllm:generation_tokens_total",
    ]) {
      expect(read, name).toContain(name);
    }
  });

  it(
    `API, agent (stand-in nvidia-smi) and engine-sim after a batch${tools.missing ? "; Prometheus part skipped: " + tools.missing : ", then Debian's Prometheus scraping them answers every dashboard query with data"}`,
    { timeout: 120_000 },
    async () => {
      // No GPU here: a stand-in nvidia-smi first on PATH prints one recorded H100 reading.
      const bin = suite.tempDir("stand-in-nvidia-smi-");
      writeFileSync(join(bin, "nvidia-smi"), "#!/bin/sh\n# Stand-in for nvidia-smi: prints a recorded reading.\necho '0, NVIDIA H100 80GB HBM3, 93, 71234, 81559, 64, 402.17'\n");
      chmodSync(join(bin, "nvidia-smi"), 0o755);
      const path = process.env.PATH;
      process.env.PATH = `${bin}:${path}`;
      suite.cleanup(() => void (process.env.PATH = path));

      const agentPort = await freePort();
      const ctx = await suite.context({ CHUNK_SIZE: "5", AGENT_POLL_MS: "50", API_POLL_MS: "50", AGENT_METRICS_POLL_MS: "50", AGENT_METRICS_PORT: String(agentPort) });
      const sim = await suite.sim({ models: ["barge-sim-1"] });
      const api = await serveApi(ctx);
      suite.cleanup(() => api.close());
      const agent = suite.agent(ctx, { engineUrl: sim.url, agentId: "series" });
      await agent.start();
      const { batchId } = await seedBatch(ctx, Array.from({ length: 10 }, (_, i) => chatLine(`s-${i}`, `series ${i}`, { max_tokens: 4 })));
      await waitFor("the batch to complete", async () => (await ctx.db.selectFrom("batches").select("status").where("id", "=", batchId).executeTakeFirstOrThrow()).status === "completed");
      expect((await sdkClient(api.url).batches.retrieve(batchId)).status).toBe("completed");
      // One committed row in the usage ledger the request and token counters sum.
      await ctx.db
        .insertInto("tenant_usage")
        .values({ day: "2026-12-04", tenant: "default", model: "barge-sim-1", batch_id: "batch_ledger", requests: 3, failed: 1, prompt_tokens: 30, completion_tokens: 12, cached_tokens: 0, reasoning_tokens: 0 })
        .execute();

      const urls = { api: `${api.url}/metrics`, agent: `http://127.0.0.1:${agentPort}/metrics`, engine: `${sim.url}/metrics` };
      const exposed = Object.fromEntries(
        await Promise.all(Object.entries(urls).map(async ([who, url]) => [who, sampleNames(await (await fetch(url)).text())] as const)),
      ) as Record<keyof typeof urls, Set<string>>;
      const missing = [...panelQueries, ...ruleQueries].flatMap((q) => seriesIn(q.expr).filter((n) => !exposed[source(n)].has(n)).map((n) => `${q.where}: ${n} (${source(n)})`));
      expect(missing).toEqual([]);

      if (tools.missing !== undefined) return;
      // Prometheus scrapes the three with the shipped scrape config, its targets pointed here, every second.
      const shipped = parse(readFileSync(join(INFRA, "prometheus/prometheus.yml"), "utf8")) as { scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] };
      const target = { "barge-api": new URL(api.url).host, "barge-agent": `127.0.0.1:${agentPort}`, vllm: new URL(sim.url).host } as Record<string, string>;
      const config = {
        global: { scrape_interval: "1s", evaluation_interval: "1s" },
        rule_files: [RULES],
        scrape_configs: shipped.scrape_configs.map((s) => ({ ...s, static_configs: [{ targets: [target[s.job_name]!] }] })),
      };
      const prom = await startPrometheus(tools.prometheus, stringify(config), await freePort());
      suite.cleanup(() => prom.stop());
      const query = async (expr: string) => {
        const r = await fetch(`${prom.url}/api/v1/query?${new URLSearchParams({ query: expr })}`);
        const body = (await r.json()) as { status: string; error?: string; data: { result: unknown[] } };
        if (body.status !== "success") throw new Error(`${expr}: ${body.error}`);
        return body.data.result;
      };
      await eventually("all three targets up", async () => (await query("up == 1")).length === 3, 30_000);
      // A rate needs two samples in its window; each query is polled until it answers with data.
      for (const q of panelQueries) await eventually(`data for ${q.where}: ${q.expr}`, async () => (await query(q.expr)).length > 0, 20_000);
      // The server loaded the shipped rules and evaluates each without error.
      const rules = await eventually("the rules to be evaluated", async () => {
        const body = (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string; health: string; lastEvaluation: string }[] }[] } };
        const all = body.data.groups.flatMap((g) => g.rules);
        return all.every((r) => !r.lastEvaluation.startsWith("0001")) ? all : undefined;
      }, 20_000);
      expect(rules.map((r) => [r.name, r.health])).toEqual(ruleQueries.map((q) => [q.where.replace("alert ", ""), "ok"]));
    },
  );
});

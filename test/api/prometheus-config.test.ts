import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { prometheusTools, runPromtool } from "../support/prometheus.js";

const DIR = resolve(import.meta.dirname, "../../infra/prometheus");
const CONFIG = `${DIR}/prometheus.yml`;
const RULES = `${DIR}/rules/barge.rules.yml`;
const RULE_TESTS = `${DIR}/tests/barge.rules.test.yml`;
const ALERTS = ["BargeNoLiveAgent", "BargeQueueNotDraining", "BargeGpuHot", "BargeBatchFailureRate", "BargeChunkRescuedRepeatedly", "BargeDatabaseUnreachable"];

const tools = prometheusTools();

interface RuleTests {
  tests: { name: string; alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
}

describe("infra/prometheus: the scrape config and the alert rules", () => {
  it("scrapes the API, the agent and the engine (vLLM or engine-sim), and loads the rules", () => {
    const config = parse(readFileSync(CONFIG, "utf8")) as { rule_files: string[]; scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] };
    expect(config.rule_files).toEqual(["rules/barge.rules.yml"]);
    expect(config.scrape_configs.map((s) => [s.job_name, s.static_configs.flatMap((c) => c.targets)])).toEqual([
      ["barge-api", ["api:4080"]],
      ["barge-agent", ["agent:9464"]],
      ["vllm", ["engine:8000"]],
    ]);
  });

  it("has each alert the operations issue names, and every alert has a firing and a quiet unit test", () => {
    const rules = parse(readFileSync(RULES, "utf8")) as { groups: { rules: { alert: string }[] }[] };
    expect(rules.groups.flatMap((g) => g.rules.map((r) => r.alert))).toEqual(ALERTS);
    const cases = (parse(readFileSync(RULE_TESTS, "utf8")) as RuleTests).tests.flatMap((t) => t.alert_rule_test);
    for (const alert of ALERTS) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect([alert, mine.some((c) => c.exp_alerts.length > 0), mine.some((c) => c.exp_alerts.length === 0)]).toEqual([alert, true, true]);
    }
  });

  describe.skipIf(tools.missing !== undefined)(`promtool${tools.missing ? ` (skipped: ${tools.missing})` : ""}`, () => {
    const promtool = tools.missing === undefined ? tools.promtool : "";

    it("check config: valid, with its one rule file", () => {
      const r = runPromtool(promtool, ["check", "config", CONFIG]);
      expect([r.code, r.output]).toEqual([0, expect.stringContaining("SUCCESS: 1 rule files found")]);
      expect(r.output).toContain("is valid prometheus config file syntax");
    });

    it("check rules: every rule valid, no lint finding", () => {
      const r = runPromtool(promtool, ["check", "rules", RULES]);
      expect(r).toEqual({ code: 0, output: `Checking ${RULES}\n  SUCCESS: ${ALERTS.length} rules found\n\n` });
    });

    it("test rules: every unit test passes", () => {
      const r = runPromtool(promtool, ["test", "rules", RULE_TESTS]);
      expect(r).toEqual({ code: 0, output: `Unit Testing:  ${RULE_TESTS}\n  SUCCESS\n\n` });
    });
  });
});

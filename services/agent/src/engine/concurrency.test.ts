import { describe, expect, it, vi } from "vitest";
import type { Logger } from "@barge/core";
import { ConcurrencyController, concurrencyBounds, parseEngineLoad, startLoadPoller, targetWaiting, type EngineLoad } from "./concurrency.js";

const load = (running: number, waiting: number): EngineLoad => ({ running, waiting, kvCacheUsage: 0 });

describe("parseEngineLoad", () => {
  it("sums the scheduler gauges over label sets and ignores comments and other metrics", () => {
    const text = [
      "# HELP vllm:num_requests_running Number of requests in model execution batches.",
      "# TYPE vllm:num_requests_running gauge",
      'vllm:num_requests_running{engine="0",model_name="a b"} 7',
      'vllm:num_requests_running{engine="1",model_name="a b"} 5.0',
      'vllm:num_requests_waiting{model_name="a"} 3',
      'vllm:num_requests_waiting{model_name="b"} 1 1700000000000',
      'vllm:kv_cache_usage_perc{model_name="a"} 0.25',
      "vllm:prompt_tokens_total 99",
      "",
    ].join("\n");
    expect(parseEngineLoad(text)).toEqual({ running: 12, waiting: 4, kvCacheUsage: 0.25 });
  });

  it("reads the older gpu_cache_usage_perc name and is undefined without the scheduler gauges", () => {
    expect(parseEngineLoad("vllm:num_requests_running 2\nvllm:num_requests_waiting 0\nvllm:gpu_cache_usage_perc 0.5\n")).toEqual({
      running: 2,
      waiting: 0,
      kvCacheUsage: 0.5,
    });
    expect(parseEngineLoad("vllm:num_requests_running 2\n")).toBeUndefined();
    expect(parseEngineLoad("<html>not found</html>")).toBeUndefined();
  });
});

describe("ConcurrencyController with metrics", () => {
  it("targets a queue of max(2, running)", () => {
    expect([0, 1, 3, 8, 256].map(targetWaiting)).toEqual([2, 2, 3, 8, 256]);
  });

  it("grows while the engine has spare slots and the limit is in use, until a queue forms", () => {
    const c = new ConcurrencyController({ initial: 8, min: 1, max: 1024 });
    // 8 in flight, all running, none waiting: the engine may have more slots.
    expect(c.observeLoad(load(8, 0))).toBe(16);
    expect(c.observeLoad(load(16, 0))).toBe(32);
    expect(c.observeLoad(load(32, 0))).toBe(64);
    // The engine has 20 slots: 44 wait, more than the target of 20, so the limit is capacity + 20.
    expect(c.observeLoad(load(20, 44))).toBe(40);
    // Steady state: 20 waiting is on target, the limit holds.
    expect(c.observeLoad(load(20, 20))).toBe(40);
    expect(c.observeLoad(load(20, 1))).toBe(40);
    expect(c.mode).toBe("metrics");
  });

  it("converges on a 256-slot engine to running + 256", () => {
    const c = new ConcurrencyController({ initial: 64, min: 1, max: 1024 });
    const limits: number[] = [];
    for (let i = 0; i < 8; i++) {
      const inFlight = c.limit;
      limits.push(c.observeLoad(load(Math.min(inFlight, 256), Math.max(0, inFlight - 256))));
    }
    expect(limits).toEqual([128, 256, 512, 512, 512, 512, 512, 512]);
  });

  it("holds when the limit is not in use, and stays within its bounds", () => {
    const c = new ConcurrencyController({ initial: 40, min: 4, max: 50 });
    expect(c.observeLoad(load(3, 0))).toBe(40);
    expect(c.observeLoad(load(40, 0))).toBe(50);
    expect(c.observeLoad(load(1, 30))).toBe(4);
    expect(new ConcurrencyController({ initial: 500, min: 4, max: 50 }).limit).toBe(50);
  });

  it("tells subscribers of every change, and only of changes", () => {
    const c = new ConcurrencyController({ initial: 10, min: 1, max: 100 });
    const seen: number[] = [];
    const off = c.onChange((n) => seen.push(n));
    c.observeLoad(load(10, 0));
    c.observeLoad(load(10, 2));
    c.observeLoad(load(8, 9));
    off();
    c.observeLoad(load(30, 9));
    expect(seen).toEqual([20, 16]);
  });

  it("ignores request samples while metrics steer", () => {
    const c = new ConcurrencyController({ initial: 10, min: 1, max: 100 });
    c.observeLoad(load(0, 0));
    expect(c.observeRequest({ latencyMs: 5, outcome: "backpressure" })).toBe(10);
  });
});

describe("ConcurrencyController without metrics (AIMD)", () => {
  const window = (c: ConcurrencyController, latencyMs: number, outcome: "ok" | "error" = "ok") => {
    const n = c.limit;
    for (let i = 0; i < n; i++) c.observeRequest({ latencyMs, outcome });
    return c.limit;
  };

  it("adds one per calm window and cuts by 30% when latency rises", () => {
    const c = new ConcurrencyController({ initial: 10, min: 2, max: 100 });
    c.metricsUnavailable();
    expect(c.mode).toBe("latency");
    expect([window(c, 100), window(c, 100), window(c, 120), window(c, 140)]).toEqual([11, 12, 13, 14]);
    // 151 ms is more than 1.5 x the best window (100 ms): the queue is growing.
    expect(window(c, 151)).toBe(9);
    expect(window(c, 100)).toBe(10);
  });

  it("cuts on errors after a window, and at once on back-pressure, never below the floor", () => {
    const c = new ConcurrencyController({ initial: 10, min: 3, max: 100 });
    c.metricsUnavailable();
    for (let i = 0; i < 9; i++) c.observeRequest({ latencyMs: 50, outcome: "ok" });
    expect(c.observeRequest({ latencyMs: 50, outcome: "error" })).toBe(7);
    expect(c.observeRequest({ latencyMs: 50, outcome: "backpressure" })).toBe(4);
    expect(c.observeRequest({ latencyMs: 50, outcome: "backpressure" })).toBe(3);
    expect(c.observeRequest({ latencyMs: 50, outcome: "backpressure" })).toBe(3);
  });
});

describe("concurrencyBounds", () => {
  it("caps at max(1024, AGENT_CONCURRENCY) unless AGENT_MAX_CONCURRENCY is set", () => {
    expect(concurrencyBounds({ AGENT_CONCURRENCY: 64, AGENT_MIN_CONCURRENCY: 1, AGENT_MAX_CONCURRENCY: undefined })).toEqual({ initial: 64, min: 1, max: 1024 });
    expect(concurrencyBounds({ AGENT_CONCURRENCY: 2048, AGENT_MIN_CONCURRENCY: 1, AGENT_MAX_CONCURRENCY: undefined })).toEqual({ initial: 2048, min: 1, max: 2048 });
    expect(concurrencyBounds({ AGENT_CONCURRENCY: 64, AGENT_MIN_CONCURRENCY: 2, AGENT_MAX_CONCURRENCY: 512 })).toEqual({ initial: 64, min: 2, max: 512 });
  });
});

describe("startLoadPoller", () => {
  const recorder = () => {
    const lines: [string, Record<string, unknown>, string][] = [];
    const log = {
      info: (obj: Record<string, unknown>, msg: string) => lines.push(["info", obj, msg]),
      warn: (obj: Record<string, unknown>, msg: string) => lines.push(["warn", obj, msg]),
    } as unknown as Logger;
    return { lines, log };
  };

  it("feeds the engine's gauges to the controller and logs the new limit", async () => {
    const { lines, log } = recorder();
    const controller = new ConcurrencyController({ initial: 8, min: 1, max: 100 });
    const loads: EngineLoad[] = [];
    const poller = startLoadPoller({
      controller,
      log,
      intervalMs: 60_000,
      fetchMetrics: async () => "vllm:num_requests_running 8\nvllm:num_requests_waiting 0\n",
      onLoad: (l) => loads.push(l),
    });
    await vi.waitFor(() => expect(lines.length).toBe(1));
    poller.stop();
    expect(controller.limit).toBe(16);
    expect(loads).toEqual([load(8, 0)]);
    expect(lines).toEqual([["info", { concurrency: 16, previous: 8, mode: "metrics" }, "concurrency limit changed"]]);
  });

  it("falls back to latency steering, warning once, when the engine has no metrics", async () => {
    const { lines, log } = recorder();
    const controller = new ConcurrencyController({ initial: 8, min: 1, max: 100 });
    let polls = 0;
    const poller = startLoadPoller({
      controller,
      log,
      intervalMs: 50,
      fetchMetrics: async () => {
        polls++;
        throw new Error("GET /metrics answered 404");
      },
    });
    await vi.waitFor(() => expect(polls).toBeGreaterThanOrEqual(3));
    poller.stop();
    expect(controller.mode).toBe("latency");
    expect(lines).toEqual([["warn", { err: "GET /metrics answered 404" }, "engine metrics unavailable; sizing concurrency by latency"]]);
  });
});

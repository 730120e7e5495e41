import { afterEach, describe, expect, it } from "vitest";
import { GpuModel } from "./gpu.js";

const models: GpuModel[] = [];
function gpu(maxNumSeqs: number, decodeTokensPerSec: number, prefillTokensPerSec = 0): GpuModel {
  const model = new GpuModel({ maxNumSeqs, prefillTokensPerSec, decodeTokensPerSec });
  models.push(model);
  return model;
}
afterEach(() => {
  for (const model of models.splice(0)) model.shutdown();
});

describe("GpuModel", () => {
  it("computes service time from prefill and decode rates; 0 and Infinity are free", () => {
    expect(gpu(1, 10, 100).serviceMs(50, 20)).toBe(2500);
    expect(gpu(1, 0, 100).serviceMs(50, 20)).toBe(500);
    expect(gpu(1, Infinity, Infinity).serviceMs(50, 20)).toBe(0);
  });

  it("finishes zero-latency requests synchronously, without a ticket", () => {
    const model = gpu(1, 0);
    let done = 0;
    expect(model.submit(10, 5, () => done++)).toBeUndefined();
    expect(model.submit(10, 5, () => done++)).toBeUndefined();
    expect(done).toBe(2);
    const c = model.counters();
    expect([c.completed, c.promptTokensTotal, c.generationTokensTotal, c.running, c.busySlotSeconds]).toEqual([2, 20, 10, 0, 0]);
  });

  it("runs at most maxNumSeqs and queues the rest; cancel frees a slot for the queue head", () => {
    const model = gpu(2, 1); // 1 token/s: nothing finishes during the test
    const tickets = Array.from({ length: 5 }, () => model.submit(1, 100, () => {}));
    expect(model.counters()).toMatchObject({ running: 2, waiting: 3, maxRunning: 2, maxWaiting: 3 });
    tickets[0]?.cancel();
    expect(model.counters()).toMatchObject({ running: 2, waiting: 2, aborted: 1 });
    tickets[4]?.cancel();
    tickets[4]?.cancel(); // idempotent
    expect(model.counters()).toMatchObject({ running: 2, waiting: 1, aborted: 2 });
    tickets[1]?.cancel();
    tickets[2]?.cancel();
    expect(model.counters()).toMatchObject({ running: 1, waiting: 0, aborted: 4, completed: 0 });
  });

  it("serves the queue in FIFO order", async () => {
    const model = gpu(1, 1000); // 2 tokens → 2 ms each
    const order: number[] = [];
    await Promise.all(Array.from({ length: 6 }, (_, i) => new Promise<void>((resolve) => model.submit(0, 2, () => (order.push(i), resolve())))));
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(model.counters()).toMatchObject({ completed: 6, generationTokensTotal: 12, maxRunning: 1, maxWaiting: 5 });
  });

  it("splits the active window into busy and idle slot-seconds", async () => {
    const model = gpu(2, 500); // one sequence on two slots for the whole window
    await new Promise<void>((resolve) => model.submit(0, 10, resolve));
    const c = model.counters();
    expect(c.busySlotSeconds).toBeGreaterThan(0);
    expect(c.idleSlotSeconds).toBeCloseTo(c.busySlotSeconds, 9);
  });
});

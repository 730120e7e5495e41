import { describe, expect, it, vi } from "vitest";
import type { Logger } from "./log.js";
import { startLoop, startTicker } from "./periodic.js";

const recorder = () => {
  const errors: [Record<string, unknown>, string][] = [];
  const log = { error: (obj: Record<string, unknown>, msg: string) => errors.push([obj, msg]) } as unknown as Logger;
  return { errors, log };
};

describe("startLoop", () => {
  it("steps again at once while busy, then idles until woken", async () => {
    const { log } = recorder();
    let steps = 0;
    const loop = startLoop("t", log, 60_000, async () => ++steps < 3);
    await vi.waitFor(() => expect(steps).toBe(3));
    await new Promise((r) => setTimeout(r, 30));
    expect(steps).toBe(3);
    loop.wake();
    await vi.waitFor(() => expect(steps).toBe(4));
    await loop.stop();
  });

  it("logs a failing step and keeps going", async () => {
    const { errors, log } = recorder();
    let steps = 0;
    const loop = startLoop("t", log, 10, async () => {
      if (++steps === 1) throw new Error("boom");
      return false;
    });
    await vi.waitFor(() => expect(steps).toBeGreaterThanOrEqual(2));
    await loop.stop();
    expect(errors).toEqual([[{ err: new Error("boom"), loop: "t" }, "background step failed; retrying later"]]);
  });

  it("stop() resolves after the step in flight, whose signal it aborts", async () => {
    const { log } = recorder();
    let finished = false;
    let sawAbort = false;
    let entered!: () => void;
    const inStep = new Promise<void>((r) => (entered = r));
    const loop = startLoop("t", log, 60_000, async (signal) => {
      entered();
      await new Promise<void>((r) => signal.addEventListener("abort", () => r()));
      sawAbort = signal.aborted;
      await new Promise((r) => setTimeout(r, 20));
      finished = true;
      return true;
    });
    await inStep;
    await loop.stop();
    expect(sawAbort).toBe(true);
    expect(finished).toBe(true);
  });
});

describe("startTicker", () => {
  it("ticks at a fixed rate and never runs two ticks at once", async () => {
    const { log } = recorder();
    let ticks = 0;
    let running = 0;
    let overlapped = false;
    const ticker = startTicker("t", log, 20, async () => {
      ticks++;
      if (++running > 1) overlapped = true;
      // Longer than the period: the ticks it overran are skipped, not queued.
      await new Promise((r) => setTimeout(r, 30));
      running--;
    });
    await vi.waitFor(() => expect(ticks).toBeGreaterThanOrEqual(3));
    await ticker.stop();
    expect(overlapped).toBe(false);
  });

  it("with delayFirst, waits one period before the first tick", async () => {
    const { log } = recorder();
    let ticks = 0;
    const ticker = startTicker("t", log, 60_000, async () => void ticks++, { delayFirst: true });
    await new Promise((r) => setTimeout(r, 30));
    expect(ticks).toBe(0);
    await ticker.stop();
    expect(ticks).toBe(0);
  });
});

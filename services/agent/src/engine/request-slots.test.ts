import { describe, expect, it } from "vitest";
import { ConcurrencyController } from "./concurrency.js";
import { RequestSlots } from "./request-slots.js";

describe("RequestSlots", () => {
  it("bounds acquisitions by a fixed limit without a controller", () => {
    const slots = new RequestSlots(undefined, 2);
    expect([slots.tryAcquire(), slots.tryAcquire(), slots.tryAcquire()]).toEqual([true, true, false]);
    expect(slots.inflight).toBe(2);
    slots.release();
    expect([slots.inflight, slots.tryAcquire(), slots.tryAcquire()]).toEqual([1, true, false]);
  });

  it("follows the controller's limit and wakes subscribers, in order, on releases and raised limits", () => {
    const controller = new ConcurrencyController({ initial: 1, min: 1, max: 10 });
    const slots = new RequestSlots(controller, 99);
    const woken: string[] = [];
    const offOld = slots.subscribe(() => woken.push("older"));
    slots.subscribe(() => woken.push("newer"));
    expect([slots.limit, slots.tryAcquire(), slots.tryAcquire()]).toEqual([1, true, false]);
    // 1 running, 0 waiting, the limit in use: the controller grows it, and the waiters hear of it.
    controller.observeLoad({ running: 1, waiting: 0, kvCacheUsage: 0 });
    expect([slots.limit, slots.tryAcquire()]).toEqual([3, true]);
    slots.release();
    offOld();
    slots.release();
    expect(woken).toEqual(["older", "newer", "older", "newer", "newer"]);
    slots.close();
    controller.observeLoad({ running: 0, waiting: 5, kvCacheUsage: 0 });
    expect(woken).toHaveLength(5);
  });
});

import { describe, expect, test } from "vitest";
import { InvalidRequest } from "@barge/core";
import { secondsToUtcMidnight } from "./store/tenant-quotas.js";
import { cappedPriority, openAiDuration } from "./tenant-limits.js";

describe("openAiDuration", () => {
  test("writes whole seconds, rounded up, as OpenAI's reset headers do", () => {
    expect([0, 0.2, 1, 19.999, 20, 59.5, 60, 61.2, 3599, 3600, 3725].map(openAiDuration)).toEqual([
      "0s", "1s", "1s", "20s", "20s", "1m0s", "1m0s", "1m2s", "59m59s", "1h0m0s", "1h2m5s",
    ]);
  });
});

describe("cappedPriority", () => {
  test("no cap: the asked priority, or 0", () => {
    expect([cappedPriority(1000, { max_priority: null }), cappedPriority(undefined, { max_priority: null })]).toEqual([1000, 0]);
  });

  test("at or under the cap runs as asked; above it is a 400 naming the cap; no priority is 0, or the cap below 0", () => {
    expect([cappedPriority(5, { max_priority: 5 }), cappedPriority(-3, { max_priority: 5 }), cappedPriority(undefined, { max_priority: 5 })]).toEqual([5, -3, 0]);
    expect(cappedPriority(undefined, { max_priority: -10 })).toBe(-10);
    let err: unknown;
    try {
      cappedPriority(6, { max_priority: 5 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidRequest);
    expect(err).toMatchObject({ status: 400, code: "priority_above_cap", param: "priority", message: "priority 6 is above this tenant's cap of 5 (max_priority)." });
  });
});

describe("secondsToUtcMidnight", () => {
  test("counts to the next UTC midnight, never 0", () => {
    expect(secondsToUtcMidnight(new Date("2026-12-04T23:59:59.500Z"))).toBe(1);
    expect(secondsToUtcMidnight(new Date("2026-12-04T00:00:00.000Z"))).toBe(86_400);
    expect(secondsToUtcMidnight(new Date("2026-12-31T12:00:00.000Z"))).toBe(43_200);
  });
});

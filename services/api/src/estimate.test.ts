import { describe, expect, test } from "vitest";
import { emptyProgress, type BatchRow } from "@barge/core";
import { estimateBatch } from "./estimate.js";

const t0 = new Date("2030-01-01T00:00:00Z");
const at = (seconds: number) => new Date(t0.getTime() + seconds * 1000);
const unix = (seconds: number) => t0.getTime() / 1000 + seconds;

function batch(over: Partial<BatchRow>): BatchRow {
  return { status: "in_progress", in_progress_at: t0, finalizing_at: null, cancelling_at: null, expired_at: null, total_requests: 1000, ...over } as BatchRow;
}
const progress = (done: number, tokens = 0) => ({ ...emptyProgress, completed: done, promptTokens: tokens / 2, completionTokens: tokens / 2 });

describe("batch estimates", () => {
  test("nothing before the batch starts", () => {
    expect(estimateBatch(batch({ status: "validating", in_progress_at: null }), emptyProgress, { requests_per_sec: 5 }, at(10))).toEqual({
      throughput_tokens_per_sec: null,
      estimated_completion: null,
    });
  });

  test("a running batch: its own rate once requests are done", () => {
    // 250 of 1000 in 50 s is 5/s, so 750 more take 150 s.
    expect(estimateBatch(batch({}), progress(250, 10_000), { requests_per_sec: 100 }, at(50))).toEqual({
      throughput_tokens_per_sec: 200,
      estimated_completion: unix(200),
    });
  });

  test("a running batch with nothing done yet: the model's recorded rate, else unknown", () => {
    expect(estimateBatch(batch({}), emptyProgress, { requests_per_sec: 20 }, at(3))).toEqual({ throughput_tokens_per_sec: 0, estimated_completion: unix(53) });
    expect(estimateBatch(batch({}), emptyProgress, undefined, at(3)).estimated_completion).toBeNull();
  });

  test("a finished batch keeps the speed of its run, which ended with its last chunk", () => {
    const done = batch({ status: "completed", finalizing_at: at(40) });
    expect(estimateBatch(done, progress(1000, 8000), undefined, at(400))).toEqual({ throughput_tokens_per_sec: 200, estimated_completion: null });
    const cancelled = batch({ status: "cancelled", cancelling_at: at(10) });
    expect(estimateBatch(cancelled, progress(10, 1000), undefined, at(400)).throughput_tokens_per_sec).toBe(100);
  });
});

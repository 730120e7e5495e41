import { describe, expect, it } from "vitest";
import {
  ACTIVE_BATCH_STATUSES,
  BATCH_STATUS_TIMESTAMPS,
  BATCH_STATUSES,
  BATCH_TRANSITIONS,
  CANCELLABLE_BATCH_STATUSES,
  canTransitionBatch,
  CHUNK_STATUS_TIMESTAMPS,
  CHUNK_STATUSES,
  CHUNK_TRANSITIONS,
  FINAL_BATCH_STATUSES,
  FINAL_STATE_SIDE_EFFECTS,
  FINAL_STATE_TRIGGER,
  isActiveBatchStatus,
  isBatchStatus,
  isCancellableBatchStatus,
  isFinalBatchStatus,
  isPublishedBatchStatus,
  isRetryableBatchStatus,
  PUBLISHED_BATCH_STATUSES,
  RETRYABLE_BATCH_STATUSES,
  transitionTimestamp,
  type BatchStatus,
} from "./batch-state.js";

describe("batch statuses", () => {
  it("are OpenAI's eight, in the order the list filter's error message names them", () => {
    expect(BATCH_STATUSES).toEqual(["validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"]);
    expect(CHUNK_STATUSES).toEqual(["queued", "leased", "done", "cancelled"]);
  });

  it("split into final and active with nothing left over", () => {
    expect(FINAL_BATCH_STATUSES).toEqual(["failed", "completed", "expired", "cancelled"]);
    expect(ACTIVE_BATCH_STATUSES).toEqual(["validating", "in_progress", "finalizing", "cancelling"]);
    expect([...FINAL_BATCH_STATUSES, ...ACTIVE_BATCH_STATUSES].sort()).toEqual([...BATCH_STATUSES].sort());
  });

  it("are final exactly when no move leads out of them", () => {
    const dead = BATCH_STATUSES.filter((s) => BATCH_TRANSITIONS[s].length === 0);
    expect(dead).toEqual([...FINAL_BATCH_STATUSES]);
    const deadChunks = CHUNK_STATUSES.filter((s) => CHUNK_TRANSITIONS[s].length === 0);
    expect(deadChunks).toEqual(["done", "cancelled"]);
  });

  it("publish what the finalizer's moves reach, and retry exactly those", () => {
    // `failed` is the finalizer giving up a batch Postgres kept refusing: nothing is published then.
    const finalizerTargets = [...BATCH_TRANSITIONS.finalizing, ...BATCH_TRANSITIONS.cancelling].filter((s) => s !== "failed");
    expect([...PUBLISHED_BATCH_STATUSES].sort()).toEqual(finalizerTargets.sort());
    expect(PUBLISHED_BATCH_STATUSES).toEqual(["completed", "cancelled", "expired"]);
    expect(RETRYABLE_BATCH_STATUSES).toEqual(["completed", "cancelled", "expired"]);
  });

  it("are cancellable exactly where a move leads to cancelling or cancelled", () => {
    const cancellable = BATCH_STATUSES.filter((s) => canTransitionBatch(s, "cancelling") || canTransitionBatch(s, "cancelled"));
    // `cancelling -> cancelled` is the finalizer finishing a cancel, not a cancel.
    expect(cancellable.filter((s) => s !== "cancelling")).toEqual([...CANCELLABLE_BATCH_STATUSES]);
    expect(CANCELLABLE_BATCH_STATUSES).toEqual(["validating", "in_progress"]);
  });

  it("answer their predicates for every status and for unknown strings", () => {
    for (const s of BATCH_STATUSES) {
      expect(isBatchStatus(s)).toBe(true);
      expect(isFinalBatchStatus(s)).toBe((FINAL_BATCH_STATUSES as readonly string[]).includes(s));
      expect(isActiveBatchStatus(s)).toBe(!isFinalBatchStatus(s));
      expect(isPublishedBatchStatus(s)).toBe(s === "completed" || s === "cancelled" || s === "expired");
      expect(isRetryableBatchStatus(s)).toBe(isPublishedBatchStatus(s));
      expect(isCancellableBatchStatus(s)).toBe(s === "validating" || s === "in_progress");
    }
    for (const s of ["", "done", "queued", "Completed", "canceled"]) {
      expect(isBatchStatus(s)).toBe(false);
      expect(isFinalBatchStatus(s)).toBe(false);
      expect(isActiveBatchStatus(s)).toBe(false);
      expect(isRetryableBatchStatus(s)).toBe(false);
      expect(isCancellableBatchStatus(s)).toBe(false);
    }
  });
});

describe("batch transitions", () => {
  it("are exactly the moves the queue statements make", () => {
    const moves = BATCH_STATUSES.flatMap((from) => BATCH_TRANSITIONS[from].map((to) => `${from}->${to}`));
    expect(moves).toEqual([
      "validating->in_progress",
      "validating->failed",
      "validating->cancelled",
      "in_progress->finalizing",
      "in_progress->cancelling",
      "in_progress->failed",
      "finalizing->completed",
      "finalizing->expired",
      "finalizing->failed",
      "cancelling->cancelled",
      "cancelling->failed",
    ]);
  });

  it("name only known statuses, never their own", () => {
    for (const [from, tos] of Object.entries(BATCH_TRANSITIONS)) {
      expect(isBatchStatus(from)).toBe(true);
      for (const to of tos) {
        expect(isBatchStatus(to)).toBe(true);
        expect(to).not.toBe(from);
      }
    }
    for (const [from, tos] of Object.entries(CHUNK_TRANSITIONS)) {
      expect((CHUNK_STATUSES as readonly string[]).includes(from)).toBe(true);
      for (const to of tos) expect((CHUNK_STATUSES as readonly string[]).includes(to)).toBe(true);
    }
    expect(Object.keys(BATCH_TRANSITIONS)).toEqual([...BATCH_STATUSES]);
    expect(Object.keys(CHUNK_TRANSITIONS)).toEqual([...CHUNK_STATUSES]);
  });

  it("reach every status from validating", () => {
    const seen = new Set<BatchStatus>(["validating"]);
    const todo: BatchStatus[] = ["validating"];
    for (let s = todo.pop(); s !== undefined; s = todo.pop()) {
      for (const to of BATCH_TRANSITIONS[s]) if (!seen.has(to)) (seen.add(to), todo.push(to));
    }
    expect([...seen].sort()).toEqual([...BATCH_STATUSES].sort());
  });

  it("are what canTransitionBatch allows", () => {
    expect(canTransitionBatch("validating", "in_progress")).toBe(true);
    expect(canTransitionBatch("finalizing", "expired")).toBe(true);
    expect(canTransitionBatch("in_progress", "completed")).toBe(false);
    expect(canTransitionBatch("cancelling", "finalizing")).toBe(false);
    for (const from of FINAL_BATCH_STATUSES) for (const to of BATCH_STATUSES) expect(canTransitionBatch(from, to)).toBe(false);
  });
});

describe("status timestamps", () => {
  it("give every status but validating its own *_at column", () => {
    expect(Object.keys(BATCH_STATUS_TIMESTAMPS)).toEqual([...BATCH_STATUSES]);
    for (const s of BATCH_STATUSES) expect(BATCH_STATUS_TIMESTAMPS[s]).toBe(s === "validating" ? null : `${s}_at`);
    expect(CHUNK_STATUS_TIMESTAMPS).toEqual({ queued: null, leased: null, done: "done_at", cancelled: null });
  });

  it("are stamped by each move into a status, except expired's, stamped when the batch expired", () => {
    for (const s of BATCH_STATUSES) {
      expect(transitionTimestamp(s)).toBe(s === "expired" ? null : BATCH_STATUS_TIMESTAMPS[s]);
    }
  });
});

describe("the final-state trigger", () => {
  it("is named with its migration and fires on exactly the final statuses", () => {
    expect(FINAL_STATE_TRIGGER).toMatchObject({
      table: "batches",
      trigger: "batches_final_state",
      function: "batch_reached_final_state",
      migration: "0004_openai_parity",
    });
    expect(FINAL_STATE_TRIGGER.statuses).toBe(FINAL_BATCH_STATUSES);
  });

  it("lists its three writes", () => {
    expect(FINAL_STATE_SIDE_EFFECTS.map((e) => [e.name, e.writes])).toEqual([
      ["webhook_event", "webhook_events"],
      ["output_files_expiry", "files.expires_at"],
      ["model_throughput", "model_throughput"],
    ]);
  });
});

import { LeaseLost } from "@barge/core";
import type { Notifier } from "./notifier.js";

/**
 * How a chunk run ended. `lost`: another holder owns the chunk now; `abandoned`: stopped hard,
 * like a crash, leaving the lease to lapse; `engine_down`: the engine stopped answering at all,
 * so the run committed what finished and released the chunk rather than fail its requests;
 * `paused`: its batch was paused, so it committed what finished and handed the chunk back.
 */
export type ChunkOutcome = "completed" | "cancelled" | "released" | "paused" | "engine_down" | "lost" | "abandoned";

/** How a running chunk is told to stop. */
export type StopMode = "drain" | "release" | "abandon";

/** Why a run stops dispatching. */
export type StopReason = "release" | "pause" | "outage" | "cancel" | "lost" | "abandon" | "failed";

// A later reason only replaces an earlier one of lower rank: a lost lease must win over a
// cancel in progress (nothing may be committed), and a cancel over a release or a pause (close, not requeue).
const RANK: Record<StopReason, number> = { release: 1, pause: 1, outage: 1, cancel: 2, lost: 3, abandon: 3, failed: 3 };

/**
 * The stop-reason bookkeeping of one chunk run: why it stops (the highest-ranked reason so far),
 * the error behind a failure, and the abort of its in-flight requests.
 */
export class RunStop {
  reason: StopReason | undefined;
  /** The error of a `failed` run, rethrown once the run has released its chunk. */
  failure: unknown;
  private readonly inflightCtl = new AbortController();

  /** `changed` is notified on every halt, so a dispatcher parked on a condition re-checks it. */
  constructor(private readonly changed: Notifier) {}

  /** Aborts when in-flight requests are dropped. */
  get signal(): AbortSignal {
    return this.inflightCtl.signal;
  }

  /** A stop after which nothing more may be committed. */
  severe(): boolean {
    return this.reason !== undefined && RANK[this.reason] === 3;
  }

  /** Records why the run stops (the higher-ranked reason wins) and, unless draining, aborts in-flight requests. */
  halt(next: StopReason, opts: { err?: unknown; drain?: boolean } = {}): void {
    if (this.reason === undefined || RANK[this.reason] < RANK[next]) {
      this.reason = next;
      if (opts.err !== undefined) this.failure = opts.err;
    }
    if (!opts.drain) this.inflightCtl.abort();
    this.changed.notify();
  }

  /** Halts on an error: a lost lease, or a failure of the run. */
  haltOn(err: unknown): void {
    this.halt(err instanceof LeaseLost ? "lost" : "failed", { err });
  }
}

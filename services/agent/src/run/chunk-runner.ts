import { batchInputKey, failChangedInput, InputChanged, inputChanged, LeaseLost, renewChunkLease, startTicker, type Bucket, type ChunkRow, type Config, type Db, type Logger } from "@barge/core";
import { buildChunkPart } from "../parts/build-part.js";
import type { ConcurrencyController } from "../engine/concurrency.js";
import type { EngineClient } from "../engine/engine-client.js";
import { closeRun } from "./close-run.js";
import { Dispatcher } from "./dispatcher.js";
import { Notifier } from "./notifier.js";
import { ReorderBuffer } from "./reorder-buffer.js";
import { RequestSlots } from "../engine/request-slots.js";
import type { ResultLine } from "./result-line.js";
import { RunStop, type ChunkOutcome, type StopMode } from "./run-stop.js";
import { SegmentWriter, type ChunkRef, type PendingResult } from "./segment-writer.js";

export type { ChunkOutcome, StopMode } from "./run-stop.js";

export interface ChunkRunnerDeps extends Bucket {
  db: Db;
  engine: EngineClient;
  log: Logger;
  config: Pick<Config, "AGENT_CONCURRENCY" | "SEGMENT_MAX_LINES" | "SEGMENT_MAX_MS" | "LEASE_SECONDS"> & Partial<Pick<Config, "MAX_LINE_BYTES">>;
  /** How far ahead of the oldest unfinished request dispatch may run; default 4 x the highest concurrency. */
  window?: number;
  /** Sizes in-flight requests and learns from each one; without it the limit is AGENT_CONCURRENCY, fixed. */
  concurrency?: ConcurrencyController;
  /** The in-flight bound shared with the agent's other run; without it the run counts its own against `concurrency`. */
  slots?: RequestSlots;
  /** Called with every request's result line as it is built (for the agent's counters). */
  onResult?: (kind: ResultLine["kind"]) => void;
  /** Called when this run left its batch ready for the finalizer (now finalizing, or cancelling). */
  onFinalizable?: (batchId: string) => void;
}

/** A chunk being run. */
export interface ChunkRun {
  /**
   * `drain`: stop dispatching, let in-flight requests finish, commit everything in order, hand
   * the chunk back to the queue. `release`: the same, but abort in-flight requests first (a drain
   * whose grace ran out). `abandon`: drop everything at once and commit nothing more, as a crash would.
   */
  stop(mode: StopMode): void;
  readonly done: Promise<ChunkOutcome>;
  /**
   * Resolves once at most one concurrency limit of requests is left to dispatch, or dispatching
   * has stopped: from then on the engine would drain unless the agent starts its next chunk.
   */
  readonly tail: Promise<void>;
}

/**
 * Runs one claimed chunk from its checkpoint to the end: streams its byte range, dispatches
 * requests with bounded concurrency, releases results in input order into fenced segment
 * commits, and closes the chunk. A heartbeat renews the lease and learns of cancels and pauses.
 */
export function startChunk(deps: ChunkRunnerDeps, chunk: ChunkRow): ChunkRun {
  const ref: ChunkRef = { batchId: chunk.batch_id, idx: chunk.idx, fence: chunk.fence };
  const log = deps.log.child({ batch: ref.batchId, chunk: ref.idx, fence: ref.fence });
  const { SEGMENT_MAX_LINES: maxLines, LEASE_SECONDS: leaseSeconds } = deps.config;
  const controller = deps.concurrency;
  const ownSlots = deps.slots ? undefined : new RequestSlots(controller, deps.config.AGENT_CONCURRENCY);
  const slots = deps.slots ?? ownSlots!;
  const remaining = chunk.request_count - chunk.committed;
  const reorder = new ReorderBuffer<PendingResult>(deps.window ?? 4 * (controller?.bounds.max ?? deps.config.AGENT_CONCURRENCY));
  const changed = new Notifier();
  // A freed slot or a raised limit must wake a dispatcher parked on the old count.
  const unsubscribe = slots.subscribe(() => changed.notify());
  const stop = new RunStop(changed);
  let markTail!: () => void;
  const tail = new Promise<void>((resolve) => (markTail = resolve));

  const writer = new SegmentWriter({
    deps,
    chunk: ref,
    firstSeq: chunk.next_seq,
    maxLines,
    maxMs: deps.config.SEGMENT_MAX_MS,
    onSettled: () => changed.notify(),
    onError: (err) => stop.haltOn(err),
    onRetry: (err, attempt) => log.warn({ err, attempt }, "segment commit failed; retrying"),
  });
  const dispatcher = new Dispatcher({ maxLineBytes: deps.config.MAX_LINE_BYTES, bucket: deps, engine: deps.engine, log, chunk, ref, remaining, maxLines, stop, changed, slots, controller, reorder, writer, markTail, onResult: deps.onResult });

  let beating = false;
  async function beat(): Promise<void> {
    if (beating) return;
    beating = true;
    try {
      const renewed = await renewChunkLease(deps.db, { ...ref, leaseSeconds });
      if (!renewed) stop.halt("lost");
      else if (renewed.batchStatus !== "in_progress") stop.halt("cancel");
      // A pause lets in-flight requests finish and be committed before the chunk is handed back.
      else if (renewed.paused) stop.halt("pause", { drain: true });
    } finally {
      beating = false;
    }
  }

  async function input(): Promise<{ key: string; etag: string | null; fileId: string }> {
    const found = await batchInputKey(deps.db, ref.batchId);
    if (found === undefined) throw new Error(`batch ${ref.batchId} or its input file is gone`);
    return found;
  }

  /** The input was replaced since validation: the batch fails, and this run commits nothing more. */
  async function failOnChangedInput(err: InputChanged, fileId: string): Promise<void> {
    const failed = await failChangedInput(deps.db, { ...ref, errors: [inputChanged({ input_file_id: fileId })] });
    log.warn({ key: err.key, failed }, "input object changed since validation; batch failed");
    // Its chunk is closed now (or another holder's): like a lost lease, nothing of this run may be written.
    stop.halt("lost");
  }

  async function execute(): Promise<ChunkOutcome> {
    try {
      // One beat before any request: a chunk re-queued after its batch was cancelled closes at once.
      await beat();
      if (stop.reason === undefined) {
        const { key, etag, fileId } = await input();
        try {
          await dispatcher.dispatchAll(key, etag);
        } catch (err) {
          if (!(err instanceof InputChanged)) throw err;
          await failOnChangedInput(err, fileId);
        }
      }
    } catch (err) {
      // A read cut short by a stop is the stop's doing, not a failure.
      if (!stop.signal.aborted) stop.haltOn(err);
    } finally {
      markTail();
    }
    await dispatcher.idle();

    if (!stop.severe()) {
      try {
        await writer.finish();
      } catch (err) {
        stop.haltOn(err);
      }
    }
    writer.close();
    await writer.idle();

    return closeRun({
      db: deps.db,
      ref,
      stop,
      finishedAll: dispatcher.dispatched === remaining && reorder.next === remaining,
      buildPart: async () => void (await buildChunkPart(deps, ref)),
      onFinalizable: deps.onFinalizable,
      unfinished: () => new Error(`chunk ${ref.batchId}/${ref.idx} stopped with ${reorder.next} of ${remaining} requests released`),
    });
  }

  const beats = startTicker("lease", log, Math.min(leaseSeconds * 500, 2000), () => beat().catch((err: unknown) => log.warn({ err }, "lease renewal failed; retrying next beat")), {
    delayFirst: true,
  });

  const done = execute()
    .catch((err: unknown) => {
      if (err instanceof LeaseLost) return "lost" as const;
      throw err;
    })
    .then((outcome) => {
      log.info({ outcome, committedBefore: chunk.committed, released: reorder.next }, "chunk run ended");
      return outcome;
    })
    .finally(() => {
      void beats.stop();
      unsubscribe();
      ownSlots?.close();
      writer.close();
    });

  return {
    stop(mode) {
      if (mode === "abandon") stop.halt("abandon");
      else stop.halt("release", { drain: mode === "drain" });
    },
    done,
    tail,
  };
}

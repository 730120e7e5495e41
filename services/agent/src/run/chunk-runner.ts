import {
  isBlankLine,
  closeCancelledChunk,
  completeChunk,
  LeaseLost,
  markFinalizing,
  pooledIds,
  releaseChunk,
  renewChunkLease,
  type Bucket,
  type ChunkRow,
  type Config,
  type Db,
  type Line,
  type Logger,
} from "@barge/core";
import { buildChunkPart } from "../parts/build-part.js";
import type { ConcurrencyController } from "../engine/concurrency.js";
import { EngineRequestError, type EngineClient } from "../engine/engine-client.js";
import { inputLines, parseRequest } from "./input-lines.js";
import { Notifier } from "./notifier.js";
import { ReorderBuffer } from "./reorder-buffer.js";
import { RequestSlots } from "../engine/request-slots.js";
import { buildResultLine, type EngineOutcome, type ResultLine } from "./result-line.js";
import { withRetries } from "./retry.js";
import { SegmentWriter, type ChunkRef, type PendingResult } from "./segment-writer.js";

/**
 * How a chunk run ended. `lost`: another holder owns the chunk now; `abandoned`: stopped hard,
 * like a crash, leaving the lease to lapse; `engine_down`: the engine stopped answering at all,
 * so the run committed what finished and released the chunk rather than fail its requests.
 */
export type ChunkOutcome = "completed" | "cancelled" | "released" | "engine_down" | "lost" | "abandoned";

/** How long the health probe after a request's last connection failure may take. */
const PROBE_TIMEOUT_MS = 5_000;
/** How long closing a fully committed chunk keeps retrying Postgres errors. */
const CLOSE_RETRY_MS = 60_000;

export interface ChunkRunnerDeps extends Bucket {
  db: Db;
  engine: EngineClient;
  log: Logger;
  config: Pick<Config, "AGENT_CONCURRENCY" | "SEGMENT_MAX_LINES" | "SEGMENT_MAX_MS" | "LEASE_SECONDS">;
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

/** How a running chunk is told to stop. */
export type StopMode = "drain" | "release" | "abandon";

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

type StopReason = "release" | "outage" | "cancel" | "lost" | "abandon" | "failed";

// A later reason only replaces an earlier one of lower rank: a lost lease must win over a
// cancel in progress (nothing may be committed), and a cancel over a release (close, not requeue).
const RANK: Record<StopReason, number> = { release: 1, outage: 1, cancel: 2, lost: 3, abandon: 3, failed: 3 };

/**
 * Runs one claimed chunk from its checkpoint to the end: streams its byte range, dispatches
 * requests with bounded concurrency, releases results in input order into fenced segment
 * commits, and closes the chunk. A heartbeat renews the lease and learns of cancels.
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
  const inflightCtl = new AbortController();
  const lineId = pooledIds("batch_req_");
  let markTail!: () => void;
  const tail = new Promise<void>((resolve) => (markTail = resolve));
  let inflight = 0;
  let dispatched = 0;
  let reason: StopReason | undefined;
  let failure: unknown;

  const severe = () => reason !== undefined && RANK[reason] === 3;
  /** Records why the run stops (the higher-ranked reason wins) and, unless draining, aborts in-flight requests. */
  const halt = (next: StopReason, opts: { err?: unknown; drain?: boolean } = {}) => {
    if (reason === undefined || RANK[reason] < RANK[next]) {
      reason = next;
      if (opts.err !== undefined) failure = opts.err;
    }
    if (!opts.drain) inflightCtl.abort();
    changed.notify();
  };
  const haltOn = (err: unknown) => halt(err instanceof LeaseLost ? "lost" : "failed", { err });

  const writer = new SegmentWriter({
    deps,
    chunk: ref,
    firstSeq: chunk.next_seq,
    maxLines,
    maxMs: deps.config.SEGMENT_MAX_MS,
    onSettled: () => changed.notify(),
    onError: haltOn,
    onRetry: (err, attempt) => log.warn({ err, attempt }, "segment commit failed; retrying"),
  });

  let beating = false;
  async function beat(): Promise<void> {
    if (beating) return;
    beating = true;
    try {
      const renewed = await renewChunkLease(deps.db, { ...ref, leaseSeconds });
      if (!renewed) halt("lost");
      else if (renewed.batchStatus !== "in_progress") halt("cancel");
    } finally {
      beating = false;
    }
  }

  async function inputKey(): Promise<string> {
    const row = await deps.db
      .selectFrom("batches")
      .innerJoin("files", "files.id", "batches.input_file_id")
      .select("files.s3_key")
      .where("batches.id", "=", ref.batchId)
      .executeTakeFirst();
    if (!row) throw new Error(`batch ${ref.batchId} or its input file is gone`);
    return row.s3_key;
  }

  // One probe at a time, shared by every request that failed meanwhile.
  let probing: Promise<boolean> | undefined;
  const engineAnswers = (): Promise<boolean> =>
    (probing ??= deps.engine
      .models(AbortSignal.timeout(PROBE_TIMEOUT_MS))
      .then(
        (models) => models.length > 0,
        () => false,
      )
      .finally(() => {
        probing = undefined;
      }));

  /**
   * The result line of a request the engine never answered, or undefined when there must be none:
   * the run was stopped, or the engine itself is down (refused, or its model list does not answer
   * either), in which case the run stops for an outage instead of failing every request behind it.
   */
  async function failedResult(customId: string, err: unknown): Promise<ResultLine | undefined> {
    if (inflightCtl.signal.aborted) return undefined;
    if (err instanceof EngineRequestError && err.code === "engine_unavailable" && (err.refused || !(await engineAnswers()))) {
      if (reason === undefined) log.warn({ err: err.message }, "engine unavailable; committing what finished and releasing the chunk");
      halt("outage");
      return undefined;
    }
    return inflightCtl.signal.aborted ? undefined : buildResultLine(customId, failureOf(err), lineId());
  }

  /** Sends one request on the slot the dispatcher took for it. */
  function dispatch(pos: number, line: Line): void {
    let req: ReturnType<typeof parseRequest>;
    try {
      req = parseRequest(line.text);
    } catch (err) {
      // The slot is the agent's, not this run's: a line that fails here must not keep it.
      slots.release();
      throw err;
    }
    const requestIndex = chunk.request_start + chunk.committed + pos;
    const requestId = `${ref.batchId}:${requestIndex}`;
    inflight++;
    dispatched++;
    const sentAt = performance.now();
    deps.engine
      .send({ url: req.url, body: req.body, requestId }, inflightCtl.signal)
      .then(
        (res): ResultLine => {
          const backpressure = res.backpressure === true || res.status === 429 || res.status === 503;
          controller?.observeRequest({ latencyMs: performance.now() - sentAt, outcome: backpressure ? "backpressure" : res.status >= 500 ? "error" : "ok" });
          return buildResultLine(req.customId, { kind: "response", status: res.status, body: res.body, requestId: res.requestId, attempts: res.attempts }, lineId());
        },
        (err: unknown) => {
          if (!inflightCtl.signal.aborted) controller?.observeRequest({ latencyMs: performance.now() - sentAt, outcome: "error" });
          return failedResult(req.customId, err);
        },
      )
      .then((result) => {
        inflight--;
        slots.release();
        if (result) deps.onResult?.(result.kind);
        // An aborted request leaves a gap, so nothing after it is released: what gets committed
        // on a stop is exactly the in-order prefix that finished.
        if (result && !severe()) {
          for (const ready of reorder.put(pos, { result, requestIndex, end: line.end, lineNo: line.lineNo })) writer.add(ready);
        }
        changed.notify();
      });
  }

  async function dispatchAll(key: string): Promise<void> {
    if (remaining <= 0) return;
    let pos = 0;
    const lines = inputLines(deps, key, { offset: chunk.next_offset, lineNo: chunk.next_line }, chunk.end_offset, inflightCtl.signal);
    for await (const line of lines) {
      // Blank lines were skipped by validation too, so request numbering matches the chunk index.
      if (isBlankLine(line.text)) continue;
      // Pulling the next line only when it can be sent is what lets the stream's backpressure bound memory.
      // The slot is taken last, so a run held back by its own buffers never sits on one.
      while (reason === undefined && !(reorder.canAccept(pos) && writer.pending < maxLines && slots.tryAcquire())) await changed.wait();
      if (reason !== undefined) return;
      dispatch(pos, line);
      if (++pos === remaining) return;
      if (remaining - pos <= slots.limit) markTail();
    }
    if (reason === undefined) throw new Error(`input of chunk ${ref.batchId}/${ref.idx} ended after ${pos} of ${remaining} requests`);
  }

  /** Every request of the chunk is committed: closes the chunk and, when it was the batch's last, readies the batch for the finalizer. */
  async function completeRun(): Promise<"completed"> {
    // The chunk's output joins the batch's output upload before the batch can turn finalizing.
    await buildChunkPart(deps, ref);
    const finalizing = await withRetries(
      () =>
        deps.db.transaction().execute(async (tx) => {
          if (!(await completeChunk(tx, ref))) throw new LeaseLost(`completing chunk ${ref.batchId}/${ref.idx}`);
          return markFinalizing(tx, ref.batchId);
        }),
      { retryable: (err) => !(err instanceof LeaseLost), maxMs: CLOSE_RETRY_MS },
    );
    if (finalizing || reason === "cancel") deps.onFinalizable?.(ref.batchId);
    return "completed";
  }

  async function execute(): Promise<ChunkOutcome> {
    try {
      // One beat before any request: a chunk re-queued after its batch was cancelled closes at once.
      await beat();
      if (reason === undefined) await dispatchAll(await inputKey());
    } catch (err) {
      // A read cut short by a stop is the stop's doing, not a failure.
      if (!inflightCtl.signal.aborted) haltOn(err);
    } finally {
      markTail();
    }
    while (inflight > 0) await changed.wait();

    if (!severe()) {
      try {
        await writer.finish();
      } catch (err) {
        haltOn(err);
      }
    }
    writer.close();
    await writer.idle();

    if (reason === "lost") return "lost";
    if (reason === "abandon") return "abandoned";
    if (reason === "failed") {
      // The checkpoint is consistent whatever failed, so the next holder can resume right away.
      await releaseChunk(deps.db, { ...ref, failed: true }).catch(() => false);
      throw failure;
    }

    const finishedAll = dispatched === remaining && reorder.next === remaining;
    if (finishedAll) return completeRun();
    if (reason === "cancel") {
      if (!(await closeCancelledChunk(deps.db, ref))) return "lost";
      deps.onFinalizable?.(ref.batchId);
      return "cancelled";
    }
    if (reason === "release") return (await releaseChunk(deps.db, ref)) ? "released" : "lost";
    // An outage counts towards the poison cap: a request that crashes the engine would otherwise
    // take it down again on every claim, forever.
    if (reason === "outage") return (await releaseChunk(deps.db, { ...ref, failed: true })) ? "engine_down" : "lost";
    throw new Error(`chunk ${ref.batchId}/${ref.idx} stopped with ${reorder.next} of ${remaining} requests released`);
  }

  const beatMs = Math.min(leaseSeconds * 500, 2000);
  const timer = setInterval(() => {
    beat().catch((err: unknown) => log.warn({ err }, "lease renewal failed; retrying next beat"));
  }, beatMs);

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
      clearInterval(timer);
      unsubscribe();
      ownSlots?.close();
      writer.close();
    });

  return {
    stop(mode) {
      if (mode === "abandon") halt("abandon");
      else halt("release", { drain: mode === "drain" });
    },
    done,
    tail,
  };
}

function failureOf(err: unknown): EngineOutcome {
  if (err instanceof EngineRequestError) return { kind: "failure", code: err.code, message: err.message, attempts: err.attempts };
  return { kind: "failure", code: "engine_unavailable", message: err instanceof Error ? err.message : String(err), attempts: 1 };
}

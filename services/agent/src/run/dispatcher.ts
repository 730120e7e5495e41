import { MAX_JSON_DEPTH, nestsDeeperThan, pooledIds, type Bucket, type ChunkRow, type Logger } from "@barge/core";
import type { ConcurrencyController } from "../engine/concurrency.js";
import { EngineRequestError, type EngineClient } from "../engine/engine-client.js";
import type { RequestSlots } from "../engine/request-slots.js";
import { inputLines, isRequestLine, parseRequest, type InputLine } from "./input-lines.js";
import type { Notifier } from "./notifier.js";
import type { ReorderBuffer } from "./reorder-buffer.js";
import { buildResultLine, type EngineOutcome, type ResultLine } from "./result-line.js";
import type { RunStop } from "./run-stop.js";
import type { ChunkRef, PendingResult, SegmentWriter } from "./segment-writer.js";

/** How long the health probe after a request's last connection failure may take. */
const PROBE_TIMEOUT_MS = 5_000;

export interface DispatcherOptions {
  bucket: Bucket;
  engine: EngineClient;
  log: Logger;
  chunk: ChunkRow;
  ref: ChunkRef;
  /** MAX_LINE_BYTES; unset, the readers' default. */
  maxLineBytes?: number | undefined;
  /** Requests of the chunk not yet committed when it was claimed. */
  remaining: number;
  /** Results the writer may hold uncommitted before dispatch waits (SEGMENT_MAX_LINES). */
  maxLines: number;
  stop: RunStop;
  /** Notified whenever a condition dispatch waits on may have changed. */
  changed: Notifier;
  slots: RequestSlots;
  controller?: ConcurrencyController | undefined;
  reorder: ReorderBuffer<PendingResult>;
  writer: SegmentWriter;
  /** Called once at most one concurrency limit of requests is left to dispatch. */
  markTail: () => void;
  onResult?: ((kind: ResultLine["kind"]) => void) | undefined;
}

/**
 * The feeding side of a chunk run: streams the chunk's lines, sends each on a slot of the
 * agent's concurrency, and puts the results into the reorder buffer, which releases them in
 * input order to the segment writer.
 */
export class Dispatcher {
  /** Requests sent and not yet answered. */
  inflight = 0;
  /** Requests sent so far. */
  dispatched = 0;
  private readonly lineId = pooledIds("batch_req_");
  // One probe at a time, shared by every request that failed meanwhile.
  private probing: Promise<boolean> | undefined;

  constructor(private readonly o: DispatcherOptions) {}

  /** Dispatches the chunk's requests from its checkpoint until all are sent or the run stops; `etag` pins the reads. */
  async dispatchAll(key: string, etag: string | null): Promise<void> {
    const { chunk, ref, remaining, stop, changed, slots, reorder, writer } = this.o;
    if (remaining <= 0) return;
    let pos = 0;
    const lines = inputLines(this.o.bucket, key, { offset: chunk.next_offset, lineNo: chunk.next_line }, chunk.end_offset, { signal: stop.signal, maxLineBytes: this.o.maxLineBytes, ifMatch: etag });
    for await (const line of lines) {
      // Blank lines were skipped by validation too, so request numbering matches the chunk index.
      if (!isRequestLine(line)) continue;
      // Pulling the next line only when it can be sent is what lets the stream's backpressure bound memory.
      // The slot is taken last, so a run held back by its own buffers never sits on one.
      while (stop.reason === undefined && !(reorder.canAccept(pos) && writer.pending < this.o.maxLines && slots.tryAcquire())) await changed.wait();
      if (stop.reason !== undefined) return;
      this.dispatch(pos, line);
      if (++pos === remaining) return;
      if (remaining - pos <= slots.limit) this.o.markTail();
    }
    if (stop.reason === undefined) throw new Error(`input of chunk ${ref.batchId}/${ref.idx} ended after ${pos} of ${remaining} requests`);
  }

  /** Resolves once no request is in flight. */
  async idle(): Promise<void> {
    while (this.inflight > 0) await this.o.changed.wait();
  }

  /** Sends one request on the slot the dispatcher took for it. */
  private dispatch(pos: number, line: InputLine): void {
    const { chunk, ref, stop, slots, reorder, writer } = this.o;
    let req: ReturnType<typeof parseRequest> | undefined;
    try {
      if (line.oversizedBytes === undefined) req = parseRequest(line.text);
    } catch (err) {
      // The slot is the agent's, not this run's: a line that fails here must not keep it.
      slots.release();
      throw err;
    }
    const requestIndex = chunk.request_start + chunk.committed + pos;
    const requestId = `${ref.batchId}:${requestIndex}`;
    this.inflight++;
    this.dispatched++;
    const sentAt = performance.now();
    const rejected = rejectedLine(line);
    // Only an oversized line has no parsed request, and it is always rejected.
    const answer: Promise<ResultLine | undefined> = rejected
      ? Promise.resolve(buildResultLine(req?.customId ?? line.customId!, rejected, this.lineId()))
      : this.sent(req!, requestId, sentAt);
    void answer.then((result) => {
      this.inflight--;
      slots.release();
      if (result) this.o.onResult?.(result.kind);
      // An aborted request leaves a gap, so nothing after it is released: what gets committed
      // on a stop is exactly the in-order prefix that finished.
      if (result && !stop.severe()) {
        for (const ready of reorder.put(pos, { result, requestIndex, end: line.end, lineNo: line.lineNo })) writer.add(ready);
      }
      this.o.changed.notify();
    });
  }

  /** The result of sending one request to the engine. */
  private sent(req: ReturnType<typeof parseRequest>, requestId: string, sentAt: number): Promise<ResultLine | undefined> {
    const { stop, controller, chunk } = this.o;
    // The chunk's model is its batch's. Validation made every line of a batch name it, unless the
    // batch's model overrides the lines' (the one-shot form), so setting it always is exact either
    // way. Shallow: the parsed body is copied one level, never re-read.
    const body = { ...(req.body as Record<string, unknown>), model: chunk.model };
    return this.o.engine
      .send({ url: req.url, body, requestId }, stop.signal)
      .then(
        (res): ResultLine => {
          const backpressure = res.backpressure === true || res.status === 429 || res.status === 503;
          controller?.observeRequest({ latencyMs: performance.now() - sentAt, outcome: backpressure ? "backpressure" : res.status >= 500 ? "error" : "ok" });
          return buildResultLine(req.customId, { kind: "response", status: res.status, body: res.body, requestId: res.requestId, attempts: res.attempts }, this.lineId());
        },
        (err: unknown) => {
          if (!stop.signal.aborted) controller?.observeRequest({ latencyMs: performance.now() - sentAt, outcome: "error" });
          return this.failedResult(req.customId, err);
        },
      );
  }

  /**
   * The result line of a request the engine never answered, or undefined when there must be none:
   * the run was stopped, or the engine itself is down (refused, or its model list does not answer
   * either), in which case the run stops for an outage instead of failing every request behind it.
   */
  private async failedResult(customId: string, err: unknown): Promise<ResultLine | undefined> {
    const { stop } = this.o;
    if (stop.signal.aborted) return undefined;
    if (err instanceof EngineRequestError && err.code === "engine_unavailable" && (err.refused || !(await this.engineAnswers()))) {
      if (stop.reason === undefined) this.o.log.warn({ err: err.message }, "engine unavailable; committing what finished and releasing the chunk");
      stop.halt("outage");
      return undefined;
    }
    return stop.signal.aborted ? undefined : buildResultLine(customId, failureOf(err), this.lineId());
  }

  private engineAnswers(): Promise<boolean> {
    return (this.probing ??= this.o.engine
      .models(AbortSignal.timeout(PROBE_TIMEOUT_MS))
      .then(
        (models) => models.length > 0,
        () => false,
      )
      .finally(() => {
        this.probing = undefined;
      }));
  }
}

/**
 * Why a line must fail without reaching the engine, if it must: validation rejects both kinds,
 * so one reaches a run only when a limit was lowered since, and it fails alone instead of
 * taking its chunk down (a too deep body would overflow the stack when serialized).
 */
function rejectedLine(line: InputLine): EngineOutcome | undefined {
  if (line.oversizedBytes !== undefined) {
    return { kind: "failure", code: "line_too_large", message: `Line ${line.lineNo} is ${line.oversizedBytes} bytes, longer than the line limit; it was not sent.`, attempts: 0 };
  }
  if (nestsDeeperThan(line.text)) {
    return { kind: "failure", code: "too_deeply_nested", message: `Line ${line.lineNo} nests JSON more than ${MAX_JSON_DEPTH} levels deep; it was not sent.`, attempts: 0 };
  }
  return undefined;
}

function failureOf(err: unknown): EngineOutcome {
  if (err instanceof EngineRequestError) return { kind: "failure", code: err.code, message: err.message, attempts: err.attempts };
  return { kind: "failure", code: "engine_unavailable", message: err instanceof Error ? err.message : String(err), attempts: 1 };
}

import {
  advanceCheckpoint,
  advanceSealedCheckpoint,
  cancelOnFailureThreshold,
  deleteObjects,
  isPermanentDbError,
  keys,
  LeaseLost,
  putObject,
  recordRequestErrors,
  recordSegments,
  recordUsage,
  segmentKeys,
  type Bucket,
  type Db,
  type RequestErrorEntry,
  type SegmentCommit,
  type SegmentKind,
} from "@barge/core";
import type { ResultLine } from "./result-line.js";
import { withRetries } from "./retry.js";

/** How long a segment commit keeps retrying S3 and transient Postgres errors before the chunk run fails. */
const COMMIT_RETRY_MS = 60_000;

/** One finished request, released in input order, with the checkpoint just past its line. */
export interface PendingResult {
  result: ResultLine;
  /** 0-based index of the request in its batch. */
  requestIndex: number;
  /** Byte offset just past the request's input line. */
  end: number;
  lineNo: number;
}

/** The fenced identity of a leased chunk. */
export interface ChunkRef {
  batchId: string;
  idx: number;
  fence: number;
}

export interface SegmentDeps extends Bucket {
  db: Db;
}

/**
 * Commits results as segment `seq` of a chunk: PUTs the output and error lines as separate
 * objects (only the non-empty ones), then advances the checkpoint and records the objects and
 * the failed requests in one transaction. The checkpoint write is fenced on the lease token and
 * `seq`; when it matches no row the transaction rolls back, the objects just written are deleted
 * (they are never referenced: their key names this writer's fence) and LeaseLost is thrown.
 * `finalizerFence` commits into a sealed chunk as the finalizer holding that batch lease instead.
 * The same transaction cancels the batch when these results take it past its failure threshold,
 * and adds the segment to its tenant's usage.
 */
export async function commitSegment(
  deps: SegmentDeps,
  chunk: ChunkRef,
  seq: number,
  entries: readonly PendingResult[],
  opts: { finalizerFence?: number } = {},
): Promise<void> {
  const last = entries.at(-1);
  if (!last) throw new Error("commitSegment needs at least one result");
  const byKind: Record<SegmentKind, string[]> = { output: [], error: [] };
  const usage = { promptTokens: 0, completionTokens: 0, cachedTokens: 0, reasoningTokens: 0 };
  const failed: RequestErrorEntry[] = [];
  for (const { result, requestIndex, lineNo } of entries) {
    byKind[result.kind].push(result.text);
    if (result.failure) failed.push({ requestIndex, customId: result.customId, line: lineNo, ...result.failure });
    usage.promptTokens += result.usage.promptTokens;
    usage.completionTokens += result.usage.completionTokens;
    usage.cachedTokens += result.usage.cachedTokens;
    usage.reasoningTokens += result.usage.reasoningTokens;
  }
  const objects = await Promise.all(
    (["output", "error"] as const)
      .filter((kind) => byKind[kind].length > 0)
      .map(async (kind) => {
        const lines = byKind[kind];
        const body = Buffer.from(`${lines.join("\n")}\n`, "utf8");
        const writer = opts.finalizerFence === undefined ? chunk.fence : `w${opts.finalizerFence}`;
        const key = keys.segment(chunk.batchId, kind, chunk.idx, seq, writer);
        await putObject(deps, key, body);
        return { kind, key, bytes: body.length, lines: lines.length };
      }),
  );
  const commit: SegmentCommit = {
    ...chunk,
    seq,
    requests: entries.length,
    nextOffset: last.end,
    nextLine: last.lineNo + 1,
    completed: byKind.output.length,
    failed: byKind.error.length,
    ...usage,
    objects,
  };
  try {
    await deps.db.transaction().execute(async (tx) => {
      const advanced =
        opts.finalizerFence === undefined ? await advanceCheckpoint(tx, commit) : await advanceSealedCheckpoint(tx, commit, opts.finalizerFence);
      if (!advanced) throw new LeaseLost(`chunk ${chunk.batchId}/${chunk.idx} (fence ${chunk.fence}, seq ${seq})`);
      await recordSegments(tx, commit);
      await recordRequestErrors(tx, chunk.batchId, chunk.idx, failed);
      await cancelOnFailureThreshold(tx, chunk.batchId);
      await recordUsage(tx, commit);
    });
  } catch (err) {
    if (err instanceof LeaseLost) await deleteUnreferenced(deps, chunk, seq, objects.map((o) => o.key));
    throw err;
  }
}

/**
 * Deletes a fenced-out commit's objects, unless an earlier try of this very commit did land
 * (its reply lost with the connection) and a segment row names them. Best effort: what stays is
 * swept with the batch's prefix once the batch is final.
 */
async function deleteUnreferenced(deps: SegmentDeps, chunk: ChunkRef, seq: number, written: string[]): Promise<void> {
  try {
    const referenced = new Set(await segmentKeys(deps.db, { batchId: chunk.batchId, idx: chunk.idx, seq }));
    await deleteObjects(deps, written.filter((k) => !referenced.has(k)));
  } catch {
    // Left for the prefix sweep.
  }
}

export interface SegmentWriterOptions {
  deps: SegmentDeps;
  chunk: ChunkRef;
  /** The chunk's `next_seq` when it was claimed. */
  firstSeq: number;
  /** Commit once this many results are pending (SEGMENT_MAX_LINES)... */
  maxLines: number;
  /** ...or once the oldest pending result is this old (SEGMENT_MAX_MS). */
  maxMs: number;
  /** Called after every commit attempt, so a dispatcher waiting on `pending` can re-check. */
  onSettled: () => void;
  /** Called once when a background commit fails; the writer commits nothing after that. */
  onError: (err: unknown) => void;
  /** Told of each commit error about to be retried. */
  onRetry?: (err: unknown, attempt: number) => void;
}

/**
 * Buffers in-order results and commits them as segments of at most `maxLines` results, one
 * commit at a time so segment numbers stay in order. A commit runs in the background while the
 * next segment fills; the dispatcher stops pulling input while `pending` is at `maxLines`, so
 * what is held is one committing segment plus `maxLines` + the requests still in flight.
 */
export class SegmentWriter {
  private lines: PendingResult[] = [];
  private firstAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private seq: number;
  private closed = false;
  private failure: { error: unknown } | undefined;
  /** Aborted by close(): a commit waiting to retry gives up. */
  private readonly abort = new AbortController();

  constructor(private readonly opts: SegmentWriterOptions) {
    this.seq = opts.firstSeq;
  }

  /** Results waiting for the next commit. */
  get pending(): number {
    return this.lines.length;
  }

  /** Appends the next result in input order. */
  add(entry: PendingResult): void {
    if (this.closed) return;
    this.lines.push(entry);
    if (this.lines.length === 1) {
      this.firstAt = Date.now();
      this.arm(this.opts.maxMs);
    }
    if (this.lines.length >= this.opts.maxLines) this.kick();
  }

  /** Resolves when no commit is running (whether it succeeded or not). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Waits for the running commit, then commits whatever is left; throws what any commit threw. */
  async finish(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.idle();
    if (this.failure) throw this.failure.error;
    while (this.lines.length > 0) await this.commitPending();
  }

  /** Stops timers, background commits and commit retries; pending results are dropped. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.abort.abort();
  }

  private arm(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.kick(), Math.max(0, ms));
  }

  private kick(): void {
    if (this.running || this.closed || this.failure) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
      this.opts.onSettled();
    });
  }

  private async drain(): Promise<void> {
    try {
      const due = () => this.lines.length >= this.opts.maxLines || (this.lines.length > 0 && Date.now() - this.firstAt >= this.opts.maxMs);
      while (!this.closed && due()) await this.commitPending();
      if (!this.closed && this.lines.length > 0) this.arm(this.opts.maxMs - (Date.now() - this.firstAt));
    } catch (error) {
      this.failure = { error };
      this.opts.onError(error);
    }
  }

  /**
   * Commits the oldest `maxLines` pending results as the next segment, riding out S3 and Postgres
   * hiccups. Postgres refusing the data itself is no hiccup: the same commit would fail again.
   */
  private async commitPending(): Promise<void> {
    const batch = this.lines.splice(0, this.opts.maxLines);
    clearTimeout(this.timer);
    // What stays behind arrived during the previous commit; its age counts from now.
    if (this.lines.length > 0) this.firstAt = Date.now();
    await withRetries(() => commitSegment(this.opts.deps, this.opts.chunk, this.seq, batch), {
      retryable: (err) => !(err instanceof LeaseLost) && !isPermanentDbError(err),
      maxMs: COMMIT_RETRY_MS,
      signal: this.abort.signal,
      ...(this.opts.onRetry ? { onRetry: this.opts.onRetry } : {}),
    });
    this.seq++;
  }
}

import { isPermanentDbError, type AgentConfig, type Bucket, type ChunkRow, type Db, type Logger } from "@barge/core";
import type { AgentMetrics } from "./agent-metrics.js";
import type { ConcurrencyController } from "./engine/concurrency.js";
import type { EngineClient } from "./engine/engine-client.js";
import { isGivenUp, poisonEngine, poisonOf } from "./engine/poison-engine.js";
import type { RequestSlots } from "./engine/request-slots.js";
import { startChunk, type ChunkRun, type StopMode } from "./run/chunk-runner.js";
import { giveUpRun } from "./run/give-up-run.js";

/** Chunk runs an agent holds at once: the one finishing and the one already feeding the engine behind it. */
const MAX_CHUNK_RUNS = 2;

interface ActiveRun {
  run: ChunkRun;
  /** Its last requests are being dispatched: time for the next chunk to start. */
  atTail: boolean;
}

export interface ChunkRunsDeps extends Bucket {
  db: Db;
  log: Logger;
  config: AgentConfig;
  /** One controller for the agent's lifetime: what it learned about the engine outlives any one chunk. */
  concurrency: ConcurrencyController;
  /** One in-flight bound across the agent's runs: overlapping chunks share the engine, not double it. */
  slots: RequestSlots;
  metrics: AgentMetrics;
}

/**
 * The chunk runs an agent holds, and what the claim loop learns from them: when one reaches its
 * tail or ends (a wake), which batches they left ready to finalize, whether the engine went down.
 */
export class ChunkRuns {
  /** Batches a chunk run just made ready to stitch: finalized before anything else is claimed. */
  readonly finalizable = new Set<string>();
  /** A run whose outcome was engine_down: claim nothing until the engine lists its models again. */
  engineDown = false;
  /** After a failed run, its chunk (released) would be re-claimed at once: idle a poll interval first. */
  claimNotBefore = 0;

  // Oldest first; at most MAX_CHUNK_RUNS.
  private readonly runs: ActiveRun[] = [];
  private mode: StopMode | undefined;
  // The claim loop is woken when a run reaches its tail or ends, or the agent stops. `events`
  // counts them, so one that fired while the loop was busy is not slept through.
  private wakeLoop: (() => void) | undefined;
  private events = 0;

  constructor(private readonly deps: ChunkRunsDeps) {}

  /** How many runs are going. */
  get count(): number {
    return this.runs.length;
  }

  /** How the runs were told to stop; undefined while the agent runs. */
  get stopMode(): StopMode | undefined {
    return this.mode;
  }

  /** Whether another run may start: none is going, or the only one is dispatching its last requests. */
  wantsRun(): boolean {
    return !this.engineDown && (this.runs.length === 0 || (this.runs.length < MAX_CHUNK_RUNS && this.runs.every((r) => r.atTail)));
  }

  /** Starts running a claimed chunk beside the runs already going; the loop learns of its tail and end through `wake`. */
  start(client: EngineClient, chunk: ChunkRow): void {
    const { config, log, metrics } = this.deps;
    metrics.countClaim();
    const givenUp = isGivenUp(chunk, config.CHUNK_MAX_ATTEMPTS);
    const poison = poisonOf(chunk, config.CHUNK_MAX_ATTEMPTS);
    const poisoned = poison !== undefined;
    log.info({ batch: chunk.batch_id, chunk: chunk.idx, fence: chunk.fence, committed: chunk.committed, failures: chunk.failures, runs: this.runs.length + 1, concurrency: this.deps.slots.limit }, "claimed chunk");
    if (poison && !givenUp) log.warn({ batch: chunk.batch_id, chunk: chunk.idx, failures: chunk.failures }, `poison chunk: failing its remaining requests as ${poison.code}`);
    const onFinalizable = (batchId: string) => this.finalizable.add(batchId);
    const run = givenUp
      ? giveUpRun({ db: this.deps.db, log, onFinalizable }, chunk)
      : startChunk(
          {
            db: this.deps.db,
            s3: this.deps.s3,
            bucket: this.deps.bucket,
            engine: poison ? poisonEngine(client, poison) : client,
            // A poisoned run's instant failures say nothing about the engine's capacity.
            ...(poisoned ? {} : { concurrency: this.deps.concurrency }),
            slots: this.deps.slots,
            log,
            config,
            onFinalizable,
            onResult: (kind) => metrics.countResult(kind),
          },
          chunk,
        );
    const active: ActiveRun = { run, atTail: false };
    this.runs.push(active);
    // A stop that arrived while the claim was in flight found no run to stop.
    if (this.mode) run.stop(this.mode);
    void run.tail.then(() => {
      active.atTail = true;
      this.wake();
    });
    void run.done
      .then(
        (outcome) => {
          if (outcome === "completed") metrics.countChunkCompleted();
          if (outcome === "engine_down") this.engineDown = true;
        },
        (err: unknown) => {
          // Logged once: the run released its chunk marked unstorable, and the next run does not retry the commit.
          // A refusal of that run's own unstorable_result rows repeats it, until the chunk is given up (logged then).
          if (isPermanentDbError(err) && chunk.unstorable_error !== null) log.debug({ err, batch: chunk.batch_id, chunk: chunk.idx, failures: chunk.failures + 1 }, "unstorable_result rows refused by Postgres too");
          else if (isPermanentDbError(err)) log.error({ err, batch: chunk.batch_id, chunk: chunk.idx }, "chunk results refused by Postgres; its remaining requests fail as unstorable_result");
          else log.error({ err, batch: chunk.batch_id, chunk: chunk.idx }, "chunk run failed");
          this.claimNotBefore = Date.now() + config.AGENT_POLL_MS;
        },
      )
      .finally(() => {
        this.runs.splice(this.runs.indexOf(active), 1);
        this.wake();
      });
  }

  /** Tells every run, and any run a claim in flight still starts, how to stop. */
  stop(mode: StopMode): void {
    this.mode = mode;
    for (const r of this.runs) r.run.stop(mode);
  }

  /** A drain whose grace ran out: in-flight requests are aborted; what finished is still committed. */
  release(): void {
    if (this.mode === "drain") this.mode = "release";
    for (const r of this.runs) r.run.stop("release");
  }

  /** Wakes the claim loop (or makes its next sleep return at once). */
  wake(): void {
    this.events++;
    this.wakeLoop?.();
    this.wakeLoop = undefined;
  }

  /** A mark of the wakes so far, for `sleep`. */
  mark(): number {
    return this.events;
  }

  /** Whether a wake came since `mark`. */
  wokenSince(mark: number): boolean {
    return this.events !== mark;
  }

  /** Sleeps until a wake, or, while a run may start, until the next poll. */
  async sleep(): Promise<void> {
    // Polling for new work needs a timer; a loop waiting on its runs is woken by them.
    await new Promise<void>((resolve) => {
      const timer = this.wantsRun() ? setTimeout(resolve, Math.max(this.deps.config.AGENT_POLL_MS, this.claimNotBefore - Date.now())) : undefined;
      this.wakeLoop = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wakeLoop = undefined;
  }

  /** Resolves once every run has committed, released or dropped its chunk. */
  async settled(): Promise<void> {
    while (this.runs.length > 0) await Promise.allSettled(this.runs.map((r) => r.run.done));
  }
}

// The GPU model: `maxNumSeqs` slots, FIFO waiting queue, per-sequence service time
//   prompt_tokens / prefillTokensPerSec + completion_tokens / decodeTokensPerSec  (seconds).
// A rate of 0 or Infinity makes its term free; when the whole service time is 0 a request
// completes synchronously inside submit(), with no timer, which is what keeps the zero-latency
// sim fast enough for throughput benchmarks.
//
// Slot-time accounting. The "active window" starts at the first submitted request and extends to
// the latest completion/abort, or to now while anything is in flight. Over that window
//   busySlotSeconds = ∫ running dt        idleSlotSeconds = ∫ (maxNumSeqs − running) dt
// so busy + idle = maxNumSeqs × window. A quiet gap between a completion and the next arrival is
// counted (as idle) when that next arrival comes: it is time the feeder left the GPU unused.
// Requests rejected before scheduling (400/404/500, hung faults) never touch the model.

/** Scheduler shape and speed. */
export interface GpuConfig {
  maxNumSeqs: number;
  prefillTokensPerSec: number;
  decodeTokensPerSec: number;
}

/** Counters of the GPU model; token totals and `completed` count finished requests only. */
export interface GpuCounters {
  running: number;
  waiting: number;
  maxRunning: number;
  maxWaiting: number;
  completed: number;
  aborted: number;
  promptTokensTotal: number;
  generationTokensTotal: number;
  busySlotSeconds: number;
  idleSlotSeconds: number;
}

/** Handle to a scheduled request; cancel() removes it at once, freeing its slot. */
export interface GpuTicket {
  cancel(): void;
}

interface Sequence {
  promptTokens: number;
  completionTokens: number;
  serviceMs: number;
  onDone: () => void;
  timer: NodeJS.Timeout | null;
  state: "waiting" | "running" | "done";
}

function secondsFor(tokens: number, tokensPerSec: number): number {
  return tokensPerSec === 0 || tokensPerSec === Infinity ? 0 : tokens / tokensPerSec;
}

/** Simulated continuous-batching engine: bounded concurrent sequences, FIFO queue, token-rate service times. */
export class GpuModel {
  private readonly waiting = new Set<Sequence>();
  private readonly running = new Set<Sequence>();
  private maxRunning = 0;
  private maxWaiting = 0;
  private completed = 0;
  private aborted = 0;
  private promptTokensTotal = 0;
  private generationTokensTotal = 0;
  private busySlotSeconds = 0;
  private idleSlotSeconds = 0;
  private windowStarted = false;
  private lastEventMs = 0;

  constructor(readonly config: GpuConfig) {}

  /** Service time in milliseconds of one request. */
  serviceMs(promptTokens: number, completionTokens: number): number {
    return (
      (secondsFor(promptTokens, this.config.prefillTokensPerSec) + secondsFor(completionTokens, this.config.decodeTokensPerSec)) * 1000
    );
  }

  /** Schedules a request; onDone runs when it finishes. Returns undefined when it already finished synchronously. */
  submit(promptTokens: number, completionTokens: number, onDone: () => void): GpuTicket | undefined {
    const now = performance.now();
    this.advance(now);
    const serviceMs = this.serviceMs(promptTokens, completionTokens);
    // A free slot implies an empty queue, so finishing now cannot overtake anyone.
    if (serviceMs === 0 && this.running.size < this.config.maxNumSeqs) {
      this.account(promptTokens, completionTokens);
      onDone();
      return undefined;
    }
    const seq: Sequence = { promptTokens, completionTokens, serviceMs, onDone, timer: null, state: "waiting" };
    this.waiting.add(seq);
    this.drain();
    if (this.waiting.size > this.maxWaiting) this.maxWaiting = this.waiting.size;
    return { cancel: () => this.cancel(seq) };
  }

  /** Snapshot of the counters, with slot time integrated up to now while requests are in flight. */
  counters(): GpuCounters {
    let busy = this.busySlotSeconds;
    let idle = this.idleSlotSeconds;
    if (this.running.size + this.waiting.size > 0) {
      const dt = (performance.now() - this.lastEventMs) / 1000;
      busy += this.running.size * dt;
      idle += (this.config.maxNumSeqs - this.running.size) * dt;
    }
    return {
      running: this.running.size,
      waiting: this.waiting.size,
      maxRunning: this.maxRunning,
      maxWaiting: this.maxWaiting,
      completed: this.completed,
      aborted: this.aborted,
      promptTokensTotal: this.promptTokensTotal,
      generationTokensTotal: this.generationTokensTotal,
      busySlotSeconds: busy,
      idleSlotSeconds: idle,
    };
  }

  /** Drops every queued and running request without calling their callbacks (server shutdown). */
  shutdown(): void {
    for (const seq of this.running) {
      if (seq.timer) clearTimeout(seq.timer);
      seq.state = "done";
    }
    for (const seq of this.waiting) seq.state = "done";
    this.running.clear();
    this.waiting.clear();
  }

  private cancel(seq: Sequence): void {
    if (seq.state === "done") return;
    this.advance(performance.now());
    if (seq.state === "running") {
      if (seq.timer) clearTimeout(seq.timer);
      this.running.delete(seq);
    } else {
      this.waiting.delete(seq);
    }
    seq.state = "done";
    this.aborted++;
    this.drain();
  }

  /** Moves queued requests into free slots in FIFO order; zero-time ones finish on the spot. */
  private drain(): void {
    for (const seq of this.waiting) {
      if (this.running.size >= this.config.maxNumSeqs) break;
      this.waiting.delete(seq);
      if (seq.serviceMs === 0) {
        seq.state = "done";
        this.account(seq.promptTokens, seq.completionTokens);
        seq.onDone();
        continue;
      }
      seq.state = "running";
      this.running.add(seq);
      seq.timer = setTimeout(() => this.finish(seq), seq.serviceMs);
    }
    if (this.running.size > this.maxRunning) this.maxRunning = this.running.size;
  }

  private finish(seq: Sequence): void {
    this.advance(performance.now());
    this.running.delete(seq);
    seq.state = "done";
    this.account(seq.promptTokens, seq.completionTokens);
    seq.onDone();
    this.drain();
  }

  private account(promptTokens: number, completionTokens: number): void {
    this.completed++;
    this.promptTokensTotal += promptTokens;
    this.generationTokensTotal += completionTokens;
  }

  private advance(now: number): void {
    if (this.windowStarted) {
      const dt = (now - this.lastEventMs) / 1000;
      this.busySlotSeconds += this.running.size * dt;
      this.idleSlotSeconds += (this.config.maxNumSeqs - this.running.size) * dt;
    }
    this.windowStarted = true;
    this.lastEventMs = now;
  }
}

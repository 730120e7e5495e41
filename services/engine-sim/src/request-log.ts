import { closeSync, openSync, writeSync } from "node:fs";

// The request log behind GET /sim/requests and the --log-file: what each inference request
// asked for and how it ended, for tests and benches to check against.

/** One inference request as received: status null with finishedAt set means no response was sent (client gone, or a hung fault). */
export interface RequestLogEntry {
  seq: number;
  path: string;
  model: string | null;
  requestId: string | null;
  status: number | null;
  /** Unix epoch milliseconds. */
  startedAt: number;
  /** Unix epoch milliseconds; null while the request is in flight. */
  finishedAt: number | null;
}

/** The in-memory log (when `keep`) and the append-only log file (when `logFile` is set). */
export class RequestLog {
  private readonly log: RequestLogEntry[] = [];
  // Appended with writeSync: each line is in the kernel once the request finishes, so it
  // survives the sim being SIGKILLed by its parent.
  private fd: number | null;
  private seq = 0;

  constructor(
    private readonly keep: boolean,
    logFile: string | undefined,
  ) {
    this.fd = logFile === undefined ? null : openSync(logFile, "a");
  }

  /** Opens an entry for a request just received, or null when neither log is on. */
  start(path: string, requestId: string | null, startedAt: number): RequestLogEntry | null {
    if (!this.keep && this.fd === null) return null;
    const entry: RequestLogEntry = { seq: ++this.seq, path, model: null, requestId, status: null, startedAt, finishedAt: null };
    if (this.keep) this.log.push(entry);
    return entry;
  }

  /** Records how a request ended (null: no response was sent) and appends it to the file. */
  finish(entry: RequestLogEntry, status: number | null): void {
    entry.status = status;
    entry.finishedAt = Date.now();
    if (this.fd !== null) writeSync(this.fd, `${JSON.stringify(entry)}\n`);
  }

  /** The in-memory entries, oldest first (empty unless `keep`). */
  entries(): readonly RequestLogEntry[] {
    return this.log;
  }

  /** Closes the log file; later entries stay in memory only. */
  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

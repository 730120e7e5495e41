/**
 * Why a part of the embedded stack could not start: which part, where its data lives, and the
 * last lines the part itself wrote, so a user never sees a bare "undefined".
 */
export class StackStartError extends Error {
  constructor(
    readonly part: string,
    readonly dataDir: string | undefined,
    override readonly cause: unknown,
    readonly logTail: string[] = [],
  ) {
    const where = dataDir ? ` (data directory ${dataDir})` : "";
    const reason = describeError(cause);
    const tail = logTail.length > 0 ? `\n${part} said:\n${logTail.map((l) => `  ${l}`).join("\n")}` : "";
    super(`${part} failed to start${where}: ${reason}${tail}`);
    this.name = "StackStartError";
  }
}

/** A one-line account of anything thrown, including the `undefined` some libraries reject with. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  if (err === undefined || err === null || err === "") return "it gave no reason (see its output above, if any)";
  return typeof err === "string" ? err : JSON.stringify(err);
}

/** Keeps the last `max` non-blank lines a child wrote, for a failure message. */
export class LogTail {
  private readonly lines: string[] = [];
  constructor(private readonly max = 20) {}

  push(text: unknown): void {
    for (const line of String(text instanceof Error ? text.message : text).split("\n")) {
      const l = line.trimEnd();
      if (l === "") continue;
      this.lines.push(l);
      if (this.lines.length > this.max) this.lines.shift();
    }
  }

  get(): string[] {
    return [...this.lines];
  }
}

/** Runs one part's start, turning any failure into a StackStartError that names the part. */
export async function startPart<T>(part: string, dataDir: string | undefined, start: () => Promise<T>, tail?: LogTail): Promise<T> {
  try {
    return await start();
  } catch (err) {
    if (err instanceof StackStartError) throw err;
    throw new StackStartError(part, dataDir, err, tail?.get() ?? []);
  }
}

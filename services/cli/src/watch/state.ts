import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "./atomic.js";

/** The state file's name; it sits in the watched folder so the folder alone says what was done. */
export const STATE_FILE = ".barge-watch.json";

const entrySchema = z.object({
  /** The content that was submitted: another hash is another version, so another batch. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  batch_id: z.string().nullable(),
  /** submitted: a batch runs; finished: its results are downloaded; refused: the API said no, kept so it is not retried. */
  phase: z.enum(["submitted", "finished", "refused"]),
  status: z.string().nullable(),
  message: z.string().nullable(),
});
export type WatchEntry = z.infer<typeof entrySchema>;

const stateSchema = z.object({ version: z.literal(1), files: z.record(z.string(), entrySchema) });

/** What `barge watch` has done in one folder, per input file name, saved atomically and in order. */
export class WatchState {
  private saving: Promise<void> = Promise.resolve();

  private constructor(private readonly path: string, readonly files: Map<string, WatchEntry>) {}

  /** Reads the folder's state; a missing file is a fresh start, a corrupt one is an error (never a silent resubmit). */
  static async load(dir: string): Promise<WatchState> {
    const path = join(dir, STATE_FILE);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return new WatchState(path, new Map());
      throw err;
    }
    let parsed: z.infer<typeof stateSchema>;
    try {
      parsed = stateSchema.parse(JSON.parse(text));
    } catch (err) {
      throw new Error(`${path} is not a barge watch state file (${err instanceof Error ? err.message.split("\n")[0] : String(err)}); move it away to start over`);
    }
    return new WatchState(path, new Map(Object.entries(parsed.files)));
  }

  /** Records one file's entry and queues a save behind any save still running. */
  set(name: string, entry: WatchEntry): Promise<void> {
    this.files.set(name, entry);
    return this.save();
  }

  /** Writes the whole state; saves run one after the other so an older one never lands last. */
  save(): Promise<void> {
    const next = this.saving.then(() =>
      writeFileAtomic(this.path, JSON.stringify({ version: 1, files: Object.fromEntries(this.files) }, null, 2) + "\n"),
    );
    this.saving = next.catch(() => {});
    return next;
  }
}

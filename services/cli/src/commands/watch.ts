import { watch as watchFiles } from "chokidar";
import { stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ApiError, isFinal, type Batch, type BargeClient } from "../client.js";
import { progressLine } from "../progress.js";
import { produceAtomic } from "../watch/atomic.js";
import { endpointOf, isWatchInput, resultNames, sha256File } from "../watch/inputs.js";
import { WatchState, type WatchEntry } from "../watch/state.js";

export interface WatchOptions {
  dir: string;
  /** How long a file's size must stay still before it is taken as written. */
  settleMs?: number;
  /** How often a running batch is polled. */
  pollMs?: number;
  print?: (line: string) => void;
  /** Resolves when watching should stop; defaults to the first SIGINT or SIGTERM. */
  until?: Promise<unknown>;
}

/**
 * `barge watch <dir>`: every top-level `*.jsonl` in `dir`, present or to come, runs as a batch once
 * per content, and its results land beside it. Resolves once stopped, with the state saved.
 */
export async function watchFolder(client: BargeClient, o: WatchOptions): Promise<void> {
  const dir = resolve(o.dir);
  const print = o.print ?? ((l: string) => console.log(l));
  const pollMs = o.pollMs ?? 1000;
  const state = await WatchState.load(dir);
  const stopping = new AbortController();
  const busy = new Set<string>();
  const again = new Set<string>();
  const running = new Set<Promise<void>>();

  const pause = (ms: number) => sleep(ms, undefined, { signal: stopping.signal }).catch(() => {});

  /** Submits the file's current content unless that content already has a batch, then follows it. */
  async function take(name: string): Promise<void> {
    const path = join(dir, name);
    let sha256: string;
    let size: number;
    try {
      size = (await stat(path)).size;
      sha256 = await sha256File(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    let entry = state.files.get(name);
    if (entry?.sha256 === sha256) {
      if (entry.phase !== "submitted") print(`${name}: ${entry.status ?? entry.phase} earlier${entry.batch_id ? ` (${entry.batch_id})` : ""}, nothing to do`);
    } else {
      entry = await submit(name, path, sha256, size);
      if (!entry) return;
    }
    if (entry.phase === "submitted") await follow(name, entry);
  }

  async function submit(name: string, path: string, sha256: string, size: number): Promise<WatchEntry | undefined> {
    try {
      const file = await client.uploadPresigned(path);
      const batch = await client.createBatch({ input_file_id: file.id, endpoint: await endpointOf(path), metadata: { source: "watch", input_file: name } });
      const entry: WatchEntry = { sha256, size, batch_id: batch.id, phase: "submitted", status: batch.status, message: null };
      await state.set(name, entry);
      print(`${name}: created ${batch.id} (${size} bytes)`);
      return entry;
    } catch (err) {
      // A 4xx is the API's verdict on this content: kept, so it is not retried until the file changes.
      // 408 and 429 say "not now", not "not this".
      if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429) {
        await state.set(name, { sha256, size, batch_id: null, phase: "refused", status: null, message: err.message });
        print(`${name}: refused: ${err.message}${err.code ? ` (${err.code})` : ""}`);
        return undefined;
      }
      print(`${name}: not submitted, will retry when it changes or on restart: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }

  /** Polls the batch, printing a line per change, until it is final and its results are downloaded. */
  async function follow(name: string, entry: WatchEntry): Promise<void> {
    let last = "";
    while (!stopping.signal.aborted && !again.has(name)) {
      let batch: Batch;
      try {
        batch = await client.getBatch(entry.batch_id!);
      } catch (err) {
        // A batch the API no longer knows would be polled forever: it is recorded as done with.
        if (err instanceof ApiError && err.status === 404) {
          await state.set(name, { ...entry, phase: "finished", status: null, message: err.message });
          print(`${name}: ${entry.batch_id} is gone (${err.message}); not followed any more`);
          return;
        }
        // Printed once per outage, not once per poll.
        const line = `${name}: polling ${entry.batch_id} failed, retrying: ${err instanceof Error ? err.message : String(err)}`;
        if (line !== last) print((last = line));
        await pause(pollMs);
        continue;
      }
      const line = progressLine(name, batch);
      if (line !== last) print((last = line));
      if (isFinal(batch.status)) return finish(name, entry, batch);
      await pause(pollMs);
    }
  }

  async function finish(name: string, entry: WatchEntry, batch: Batch): Promise<void> {
    const out = resultNames(name);
    if (batch.output_file_id) await download(batch.output_file_id, join(dir, out.output));
    if (batch.error_file_id) await download(batch.error_file_id, join(dir, out.errors));
    for (const e of batch.errors?.data ?? []) print(`${name}: line ${e.line ?? "-"}: ${e.code}: ${e.message}`);
    await state.set(name, { ...entry, phase: "finished", status: batch.status });
    const wrote = [batch.output_file_id && out.output, batch.error_file_id && out.errors].filter(Boolean);
    print(`${name}: ${batch.status}${wrote.length ? `, wrote ${wrote.join(" and ")}` : ""}`);
  }

  function download(fileId: string, dest: string): Promise<void> {
    return produceAtomic(dest, (tmp) => client.downloadFile(fileId, tmp));
  }

  /** Runs `take` for a name, once at a time per name; an event during a run runs it again after. */
  function onFile(path: string): void {
    const name = basename(path);
    if (stopping.signal.aborted || !isWatchInput(name)) return;
    if (busy.has(name)) {
      again.add(name);
      return;
    }
    busy.add(name);
    const task = (async () => {
      try {
        do {
          again.delete(name);
          await take(name);
        } while (again.has(name) && !stopping.signal.aborted);
      } catch (err) {
        print(`${name}: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        busy.delete(name);
      }
    })();
    running.add(task);
    void task.finally(() => running.delete(task));
  }

  const watcher = watchFiles(dir, {
    depth: 0,
    ignoreInitial: false,
    awaitWriteFinish: { stabilityThreshold: o.settleMs ?? 2000, pollInterval: 100 },
    ignored: (p, stats) => resolve(p) !== dir && (!isWatchInput(basename(p)) || (stats !== undefined && !stats.isFile())),
  });
  watcher.on("add", onFile).on("change", onFile).on("error", (err) => print(`watch error: ${err instanceof Error ? err.message : String(err)}`));
  await new Promise<void>((ready) => watcher.once("ready", ready));
  print(`watching ${dir}`);

  const signals = ["SIGINT", "SIGTERM"] as const;
  let onSignal: () => void = () => {};
  const until = o.until ?? new Promise<void>((stop) => (onSignal = stop));
  for (const s of signals) process.once(s, onSignal);
  try {
    await until;
  } finally {
    for (const s of signals) process.off(s, onSignal);
    stopping.abort();
    await watcher.close();
    await Promise.all(running);
    await state.save();
    print(`stopped watching ${dir}`);
  }
}

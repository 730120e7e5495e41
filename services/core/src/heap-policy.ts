import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * Caps how far the V8 heap grows past its live data, so a long-running service's memory stays flat
 * however many requests pass through it.
 *
 * Why: the API and agent allocate fast but keep little alive (a few segments, the requests in
 * flight). V8's default heuristic lets the old generation grow to up to 4x the live data after each
 * full GC, so peak RSS rose with batch length (an agent 189 MB at 10K requests, 261 MB at 1M) while
 * the live heap stayed near 30 MB. A fixed factor keeps the limit proportional to what is alive: no
 * cap that a batch of large prompts could hit (unlike --max-old-space-size), for a little more GC
 * work. `--heap-growing-percent` is read at every GC, so setting it at start-up takes effect, and
 * it cannot be passed in NODE_OPTIONS.
 */
export function limitHeapGrowth(percent: number): void {
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}

/**
 * Keeps V8's young generation at its starting size instead of letting it double, up to 16 MiB
 * per semi-space, under sustained allocation. For the API, whose work is small requests and
 * streaming validation: neither keeps much alive, so a larger young generation only holds more
 * garbage resident.
 *
 * Why: validating a million-request file (302 MB) grew the API's heap to 56 MB committed for
 * 23 MB used, all of the difference young generation, which a 10K-request file never grows:
 * peak RSS +5 MB at 1M for no speed (1.20-1.22 s per pass either way). The agent allocates far
 * more per request and is left to V8's default. The flag is read whenever the young generation
 * would grow, so setting it at start-up takes effect.
 */
export function holdYoungGeneration(): void {
  setFlagsFromString("--semi-space-growth-factor=1");
}

/** The process's young-generation collector, when `reclaimStreamedBuffers` has turned it on. */
let reclaimer: { collect: () => void; everyBytes: number; pending: number } | null = null;

/**
 * Turns on collecting the young generation after every `everyMiB` of streamed bytes that pass
 * through `noteStreamedBytes`; 0 turns it off.
 *
 * Why: every socket read of a large S3 GET arrives in a fresh 64 KiB ArrayBuffer, garbage at once
 * but freed only by a scavenge, and the lines read from it allocate too little JS to trigger one.
 * V8 counts those buffers as external memory, and the unfreed ones soon pass the limit at which it
 * starts a full incremental mark-compact: about 30 of them per 500 MB validated, whose marking
 * work and write barriers made the pass 1.4-1.9x slower, while the unfreed buffers raised RSS with
 * the file's size. A forced scavenge every 4 MiB frees them for under 1 ms each (measured: 124
 * scavenges and one mark-compact instead of 30, 2.7 s -> 1.4 s for 524 MB, peak ArrayBuffers
 * 50 -> 20 MB); every 2 MiB (the default) keeps about 5 MB fewer resident while a 1M-request
 * file is validated, for 2-3% more time. This is process-wide, as the heap is, so it is a switch
 * set once at start-up, not a dependency. Set at run time, `--expose-gc` puts `gc` in contexts
 * created after it, such as one made here for the purpose.
 */
export function reclaimStreamedBuffers(everyMiB: number): void {
  if (everyMiB <= 0) {
    reclaimer = null;
    return;
  }
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as unknown;
  if (typeof gc !== "function") return;
  const collect = () => (gc as (options: { type: "minor" | "major" }) => void)({ type: "minor" });
  reclaimer = { collect, everyBytes: everyMiB * 1024 * 1024, pending: 0 };
}

/** Counts bytes a stream reader has taken in and let go of; see `reclaimStreamedBuffers`. */
export function noteStreamedBytes(bytes: number): void {
  if (reclaimer === null) return;
  reclaimer.pending += bytes;
  if (reclaimer.pending < reclaimer.everyBytes) return;
  reclaimer.pending = 0;
  reclaimer.collect();
}

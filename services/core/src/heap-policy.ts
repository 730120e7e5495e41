import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * Caps how far the V8 heap grows past its live data, so a long-running service's memory stays flat
 * however many requests pass through it.
 *
 * Why: the API and agent allocate fast but keep little alive (a few segments, the requests in
 * flight). V8's default heuristic lets the old generation grow to a multiple of the live data after
 * each full GC, so peak RSS rose with batch length while the live heap stayed flat (figures in
 * test/bench/README.md, "Measured reasons"). A fixed factor keeps the limit proportional to what is alive: no
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
 * Why: validating a million-request file grew the API's committed heap to more than twice what it
 * used, all of the difference young generation, which a 10K-request file never grows: more peak
 * RSS at 1M for no speed (test/bench/README.md, "Measured reasons"). The agent allocates far
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
 * starts full incremental mark-compacts, whose marking work and write barriers slow the pass,
 * while the unfreed buffers raise RSS with the file's size. A forced scavenge every few MiB frees
 * them cheaply; the default interval trades a little time for less resident memory (figures in
 * test/bench/README.md, "Measured reasons"). This is process-wide, as the heap is, so it is a switch
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

// How an object made of ordered segments is cut into multipart parts within S3's size rules.

/** S3's floor for every multipart part but the last. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
/** S3's ceiling for one part. */
export const MAX_PART_BYTES = 5 * 1024 * 1024 * 1024;
/** S3's ceiling for the number of parts in one upload. */
export const MAX_PARTS = 10_000;

/** One input object of the stitch, in output order. */
export interface SegmentRef {
  key: string;
  size: number;
}

/** A segment, or the bytes [range.start, range.end) of it when it has to be split across parts. */
export interface PartSource extends SegmentRef {
  range?: { start: number; end: number };
}

/** One numbered part: a server-side copy of one source, or sources concatenated by the client. */
export type PartPlan =
  | { kind: "copy"; partNumber: number; source: PartSource; bytes: number }
  | { kind: "concat"; partNumber: number; sources: PartSource[]; bytes: number };

/** Limits to plan within; S3's own unless a test or a server says otherwise. */
export interface PlanOptions {
  minPartBytes?: number;
  maxPartBytes?: number;
  maxParts?: number;
  /** false: never plan UploadPartCopy (for servers without it). */
  copy?: boolean;
}

type Unnumbered = { kind: "copy"; source: PartSource; bytes: number } | { kind: "concat"; sources: PartSource[]; bytes: number };

/** The bytes a source contributes: its range, or the whole segment. */
export function sourceBytes(s: PartSource): number {
  return s.range ? s.range.end - s.range.start : s.size;
}

function slice(seg: SegmentRef, start: number, end: number): PartSource {
  const ref = { key: seg.key, size: seg.size };
  return start === 0 && end === seg.size ? ref : { ...ref, range: { start, end } };
}

/** The segments' total size; throws on a size that is not a non-negative integer. */
export function totalBytes(segments: SegmentRef[]): number {
  let total = 0;
  for (const s of segments) {
    if (!Number.isSafeInteger(s.size) || s.size < 0) throw new RangeError(`segment ${s.key} has invalid size ${s.size}`);
    total += s.size;
  }
  return total;
}

/** Splits ordered segments into multipart parts that obey S3's size rules, copying server-side where it can. */
export function planParts(segments: SegmentRef[], opts: PlanOptions = {}): PartPlan[] {
  const maxPart = opts.maxPartBytes ?? MAX_PART_BYTES;
  const maxParts = opts.maxParts ?? MAX_PARTS;
  const copy = opts.copy ?? true;
  const total = totalBytes(segments);
  // Every part but the last reaches `min`, so raising it for huge objects caps the part count.
  const min = Math.max(opts.minPartBytes ?? MIN_PART_BYTES, Math.ceil(total / (maxParts - 1)));
  // Splitting an oversized segment into k ranged copies yields pieces > maxPart/2, which must reach min.
  if (maxPart < 2 * min) throw new RangeError(`cannot plan ${total} bytes within ${maxParts} parts of at most ${maxPart} bytes`);

  const parts: Unnumbered[] = [];
  let run: PartSource[] = [];
  let runBytes = 0;
  const flush = () => {
    if (runBytes > 0) parts.push({ kind: "concat", sources: run, bytes: runBytes });
    run = [];
    runBytes = 0;
  };
  const addToRun = (seg: SegmentRef) => {
    let start = 0;
    while (start < seg.size) {
      const take = Math.min(seg.size - start, maxPart - runBytes);
      run.push(slice(seg, start, start + take));
      runBytes += take;
      start += take;
      if (runBytes >= min) flush();
    }
  };

  for (const seg of segments) {
    if (seg.size === 0) continue;
    if (!copy || seg.size < min) {
      addToRun(seg);
      continue;
    }
    if (runBytes > 0) {
      // A run is flushed as soon as it reaches min, so this one is too small to stand alone: attach it
      // where it costs the fewest client-side bytes, keeping this segment a copy when possible.
      const prev = parts.at(-1);
      if (prev?.kind === "concat" && prev.bytes + runBytes <= maxPart) {
        prev.sources.push(...run);
        prev.bytes += runBytes;
      } else if (prev?.kind === "copy" && prev.bytes < seg.size && prev.bytes + runBytes <= maxPart) {
        parts[parts.length - 1] = { kind: "concat", sources: [prev.source, ...run], bytes: prev.bytes + runBytes };
      } else {
        addToRun(seg);
        continue;
      }
      run = [];
      runBytes = 0;
    }
    const pieces = Math.ceil(seg.size / maxPart);
    for (let i = 0; i < pieces; i++) {
      const start = Math.floor((seg.size * i) / pieces);
      const end = Math.floor((seg.size * (i + 1)) / pieces);
      parts.push({ kind: "copy", source: slice(seg, start, end), bytes: end - start });
    }
  }
  flush();
  return parts.map((p, i) => ({ ...p, partNumber: i + 1 }));
}

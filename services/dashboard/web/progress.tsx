import type { Batch } from "./types.js";

/** A batch's progress as a native `<progress>`: done (completed plus failed) of total. */
export function BatchProgress({ b }: { b: Batch }) {
  const { total, completed, failed } = b.request_counts;
  const done = completed + failed;
  const pct = total > 0 ? Math.floor((done / total) * 100) : 0;
  return (
    <span class="progress">
      <progress max={Math.max(total, 1)} value={done} aria-label={`Progress of ${b.id}`} />
      <span>{pct}%</span>
    </span>
  );
}

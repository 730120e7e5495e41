import cliProgress from "cli-progress";
import type { Batch } from "./client.js";

/** A live progress bar for one batch, on stderr so stdout stays scriptable. */
export function createBatchProgress(out: NodeJS.WriteStream = process.stderr) {
  const bar = new cliProgress.SingleBar(
    {
      format: "{status} |{bar}| {percentage}% | {value}/{total} requests | {failed} failed",
      stream: out,
      noTTYOutput: true,
      notTTYSchedule: 1000,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(b: Batch) {
      const done = b.request_counts.completed + b.request_counts.failed;
      const payload = { status: b.status.padEnd(11), failed: b.request_counts.failed };
      if (!started) {
        bar.start(Math.max(b.request_counts.total, 1), done, payload);
        started = true;
      }
      if (b.request_counts.total > 0) bar.setTotal(b.request_counts.total);
      bar.update(done, payload);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** One plain line for a batch's state, as `barge watch` prints it per file and change. */
export function progressLine(name: string, b: Batch): string {
  const c = b.request_counts;
  return `${name}: ${b.status} ${c.completed + c.failed}/${c.total}${c.failed ? ` (${c.failed} failed)` : ""}`;
}

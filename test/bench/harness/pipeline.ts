import { batchTimeline, createBatch, span, uploadPresigned, waitForBatch, type BatchObject, type Timeline, type Upload } from "./client.js";
import type { Db } from "@barge/core";
import { round } from "./procs.js";

// One batch through the whole pipeline as a user runs it: presigned upload, complete, create,
// wait for the final status; with the time of every phase.

export interface PipelineRun {
  batchId: string;
  upload: Upload;
  final: BatchObject;
  timedOut: boolean;
  timeline: Timeline;
  /** Epoch ms when the presign request was sent. */
  startedAt: number;
  /** Seconds per phase; null for a phase the batch never reached. */
  phases: {
    upload_put_s: number;
    upload_complete_s: number;
    validate_s: number | null;
    run_s: number | null;
    finalize_s: number | null;
    created_to_completed_s: number | null;
    upload_to_completed_s: number | null;
  };
}

export async function runBatch(
  apiUrl: string,
  db: Db,
  inputPath: string,
  o: { timeoutMs: number; log?: (m: string) => void; onPoll?: (b: BatchObject) => void },
): Promise<PipelineRun> {
  const startedAt = Date.now();
  const upload = await uploadPresigned(apiUrl, inputPath);
  o.log?.(`uploaded ${upload.bytes} bytes (PUT ${(upload.putMs / 1000).toFixed(1)} s, complete ${(upload.completeMs / 1000).toFixed(1)} s)`);
  const created = await createBatch(apiUrl, upload.fileId);
  let lastLog = Date.now();
  const { batch, timedOut } = await waitForBatch(apiUrl, created.id, {
    timeoutMs: o.timeoutMs,
    onPoll: (b) => {
      o.onPoll?.(b);
      if (Date.now() - lastLog > 15_000) {
        lastLog = Date.now();
        o.log?.(`${b.id} ${b.status} ${b.request_counts.completed + b.request_counts.failed}/${b.request_counts.total}`);
      }
    },
  });
  const timeline = await batchTimeline(db, created.id);
  const end = timeline.completed ?? timeline.cancelled;
  const s = (x: number | null) => (x === null ? null : round(x, 2));
  return {
    batchId: created.id,
    upload,
    final: batch,
    timedOut,
    timeline,
    startedAt,
    phases: {
      upload_put_s: round(upload.putMs / 1000, 2),
      upload_complete_s: round(upload.completeMs / 1000, 2),
      validate_s: s(span(timeline.created, timeline.inProgress)),
      run_s: s(span(timeline.inProgress, timeline.finalizing)),
      finalize_s: s(span(timeline.finalizing, timeline.completed)),
      created_to_completed_s: s(span(timeline.created, end)),
      upload_to_completed_s: s(span(startedAt, end)),
    },
  };
}

import type { ApiDeps } from "./deps.js";
import { abortUploadsStartedBefore, deleteObject, startLoop, type Loop } from "@barge/core";
import { deleteExpiredFiles, deleteExpiredPending } from "./store/files.js";
import { endUpload, expiredUploadIds } from "./store/uploads.js";

const SWEEP_BATCH = 100;

type SweepDeps = Pick<ApiDeps, "db" | "s3" | "bucket" | "log">;

/** Where uploads stream to S3 as multipart uploads: input files, staged upload parts. */
const UPLOAD_PREFIXES = ["inputs/", "uploads/"];

/** Deletes objects one by one, logging (not throwing) failures: the rows are already gone. */
async function deleteAll(deps: SweepDeps, keys: string[], what: string): Promise<void> {
  for (const key of keys) {
    await deleteObject(deps, key).catch((err: unknown) => deps.log.warn({ err, key }, `could not delete ${what}`));
  }
}

/** Runs `step` until a round comes back short, summing what it swept. */
async function drain(step: () => Promise<number>): Promise<number> {
  let swept = 0;
  for (;;) {
    const n = await step();
    swept += n;
    if (n < SWEEP_BATCH) return swept;
  }
}

/**
 * Deletes presigned uploads nobody completed before their URL lapsed, rows first (so a racing
 * completion finds nothing to complete) and then whatever objects were PUT. Returns how many.
 */
export function sweepExpiredUploads(deps: SweepDeps, now = new Date()): Promise<number> {
  return drain(async () => {
    const keys = await deleteExpiredPending(deps.db, now, SWEEP_BATCH);
    await deleteAll(deps, keys, "an expired upload");
    return keys.length;
  });
}

/**
 * Deletes files past their `expires_after` (inputs and batch outputs alike), rows first. Returns how many.
 * A serverless batch's input file row has no `expires_after`, so the user's inbox object is never swept.
 */
export function sweepExpiredFiles(deps: SweepDeps, now = new Date()): Promise<number> {
  return drain(async () => {
    const keys = await deleteExpiredFiles(deps.db, now, SWEEP_BATCH);
    await deleteAll(deps, keys, "an expired file");
    return keys.length;
  });
}

/** Moves OpenAI uploads left pending past their hour to `expired` and deletes their staged parts. Returns how many. */
export function sweepExpiredOpenAIUploads(deps: SweepDeps, now = new Date()): Promise<number> {
  return drain(async () => {
    const ids = await expiredUploadIds(deps.db, now, SWEEP_BATCH);
    for (const id of ids) {
      const ended = await endUpload(deps.db, id, "expired");
      if (ended) await deleteAll(deps, ended.stagedKeys, "an expired upload part");
    }
    return ids.length;
  });
}

/**
 * Aborts S3 multipart uploads under the upload prefixes open for longer than `staleHours`: a
 * request aborts its own, so these are what a crashed API left. Returns how many.
 */
export async function sweepStaleMultipartUploads(deps: SweepDeps, staleHours: number, now = new Date()): Promise<number> {
  const before = new Date(now.getTime() - staleHours * 3600 * 1000);
  let aborted = 0;
  for (const prefix of UPLOAD_PREFIXES) aborted += await abortUploadsStartedBefore(deps, prefix, before);
  return aborted;
}

/** Sweeps everything that expires, periodically: as often as presigned URLs lapse, at most once a minute. */
export function startSweeper(deps: ApiDeps): Loop {
  const everyMs = Math.min(deps.config.PRESIGN_EXPIRES_SECONDS, 60) * 1000;
  return startLoop("sweeper", deps.log, everyMs, async () => {
    const swept = {
      presigned: await sweepExpiredUploads(deps),
      files: await sweepExpiredFiles(deps),
      uploads: await sweepExpiredOpenAIUploads(deps),
      multipart: await sweepStaleMultipartUploads(deps, deps.config.UPLOAD_STALE_MULTIPART_HOURS),
    };
    if (swept.presigned + swept.files + swept.uploads + swept.multipart > 0) deps.log.info(swept, "expired objects swept");
    return false;
  });
}

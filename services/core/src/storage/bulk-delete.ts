import { DeleteObjectCommand, DeleteObjectsCommand, type S3Client } from "@aws-sdk/client-s3";
import type { Bucket } from "./objects.js";
import { runPool } from "./run-pool.js";
import { isUnsupported } from "./s3-errors.js";

/** DeleteObjects' ceiling on keys per request. */
const DELETE_BATCH = 1000;
const DELETE_CONCURRENCY = 8;

/** Clients whose server answered DeleteObjects as unsupported; servers do not change under a client. */
const bulkDeleteMissing = new WeakSet<S3Client>();

/** Deletes objects in batches of 1,000, one by one on servers without DeleteObjects. */
export async function deleteObjects(deps: Bucket, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += DELETE_BATCH) {
    const batch = keys.slice(i, i + DELETE_BATCH);
    if (!bulkDeleteMissing.has(deps.s3)) {
      try {
        const res = await deps.s3.send(new DeleteObjectsCommand({ Bucket: deps.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
        const errors = (res.Errors ?? []).filter((e) => e.Code !== "NoSuchKey");
        const first = errors[0];
        if (first) throw new Error(`could not delete ${errors.length} of ${batch.length} objects; ${first.Key}: ${first.Code} ${first.Message ?? ""}`.trim());
        continue;
      } catch (err) {
        if (!isUnsupported(err)) throw err;
        bulkDeleteMissing.add(deps.s3);
      }
    }
    await runPool(batch, DELETE_CONCURRENCY, async (Key, signal) => {
      await deps.s3.send(new DeleteObjectCommand({ Bucket: deps.bucket, Key }), { abortSignal: signal });
    });
  }
}

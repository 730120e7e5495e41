import { z } from "zod";

/**
 * An object an S3 server says landed in the bucket (an event record, or an entry of a listing):
 * what the serverless trigger decides on. `etag` is kept without the quotes ListObjects puts
 * around it, so an event and a listing of the same object version compare equal.
 */
export const landedObjectSchema = z.object({
  bucket: z.string().min(1),
  key: z.string().min(1),
  etag: z.string().min(1).transform((e) => e.replace(/^"|"$/g, "")),
  size: z.number().int().min(0),
  versionId: z.string().min(1).nullable().default(null),
});

/** A landed object (see `landedObjectSchema`). */
export type LandedObject = z.output<typeof landedObjectSchema>;

/**
 * Where the event route and the poller hand landed objects: it records them, exactly once per
 * (bucket, key, ETag), and starts their batches in the background, so a push is answered fast.
 */
export interface ObjectTrigger {
  /** Records the objects and returns at once with how many were new. */
  landed(objects: LandedObject[]): Promise<number>;
}

import { InvalidRequest, isStorableText, landedObjectSchema, type LandedObject } from "@barge/core";
import { z } from "zod";

/** Most records one body may carry; S3 servers send one or a few per request. */
export const MAX_RECORDS = 1000;

/** S3's own limit on a key, in UTF-8 bytes. */
const MAX_KEY_BYTES = 1024;

/** A body the event route cannot take (400): its message names the record and field. */
export class EventBodyError extends InvalidRequest {
  constructor(message: string) {
    super(message, null, "invalid_s3_event");
  }
}

// Only the fields a record's kind is decided on; the rest is read once the record is known to be a creation.
const envelope = z.object({ Records: z.array(z.unknown()).max(MAX_RECORDS, `at most ${MAX_RECORDS} records per body`) });
const head = z.object({ eventName: z.string(), eventSource: z.string().optional() });

const record = z.object({
  s3: z.object({
    bucket: z.object({ name: z.string().min(1) }),
    object: z.object({
      key: z.string().min(1),
      // A number; older RGW releases (per Ceph's docs) send it as a string.
      size: z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)]).pipe(z.number().int().min(0)),
      eTag: z.string().min(1),
      // RGW sends "" for an unversioned bucket, AWS leaves the field out, MinIO may send null.
      versionId: z.string().nullish().transform((v) => (v ? v : null)),
    }),
  }),
});

// `s3:ObjectCreated:Put` (RGW, MinIO) and `ObjectCreated:Put` (AWS, older RGW) alike.
const CREATED = /^(s3:)?ObjectCreated:/;

/** What a `Records[]` body holds: the created objects, and how many other records (removals...) it skipped. */
export interface ParsedRecords {
  objects: LandedObject[];
  ignored: number;
}

/**
 * The objects an AWS-shaped `Records[]` event body (RGW, MinIO, AWS S3) says were created. Other
 * events are ignored. A creation record missing a field is refused whole (an S3 server never
 * sends one, so it is a bug or a forgery, and skipping it would lose an object silently).
 */
export function parseRecords(body: unknown): ParsedRecords {
  const top = envelope.safeParse(body);
  if (!top.success) {
    const issue = top.error.issues[0];
    throw new EventBodyError(
      issue?.code === "too_big" ? `The body holds more than ${MAX_RECORDS} records.` : "The body is not an S3 event: it needs a 'Records' array.",
    );
  }
  const objects: LandedObject[] = [];
  let ignored = 0;
  top.data.Records.forEach((raw, i) => {
    const h = head.safeParse(raw);
    if (!h.success) throw new EventBodyError(`Records[${i}] has no 'eventName'.`);
    if (!CREATED.test(h.data.eventName)) {
      ignored++;
      return;
    }
    objects.push(createdObject(raw, i, h.data.eventSource));
  });
  return { objects, ignored };
}

function createdObject(raw: unknown, i: number, source: string | undefined): LandedObject {
  const r = record.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new EventBodyError(`Records[${i}].${issue.path.map(String).join(".")}: ${issue.message}.`);
  }
  const { bucket, object } = r.data.s3;
  const key = source === "ceph:s3" ? object.key : decodeKey(object.key, i);
  for (const [name, text] of [["s3.bucket.name", bucket.name], ["s3.object.key", key], ["s3.object.eTag", object.eTag]] as const) {
    if (!isStorableText(text)) throw new EventBodyError(`Records[${i}].${name} holds U+0000 or an unpaired surrogate.`);
  }
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new EventBodyError(`Records[${i}].s3.object.key is longer than ${MAX_KEY_BYTES} bytes.`);
  return landedObjectSchema.parse({ bucket: bucket.name, key, etag: object.eTag, size: object.size, versionId: object.versionId });
}

/**
 * AWS and MinIO send the key form-encoded (`+` for a space, %XX for the rest); RGW sends it as
 * stored (checked on a real RGW push), so a `ceph:s3` record's key is not decoded.
 */
function decodeKey(key: string, i: number): string {
  try {
    return decodeURIComponent(key.replaceAll("+", " "));
  } catch {
    throw new EventBodyError(`Records[${i}].s3.object.key is not validly URL-encoded.`);
  }
}

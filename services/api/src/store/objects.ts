import { DeleteObjectCommand, GetObjectCommand } from "@aws-sdk/client-s3";
import type { Readable } from "node:stream";
import { isNotFound, type Bucket } from "@barge/core";

/** An object's body stream and length, or undefined when there is no such object. */
export async function openObject(b: Bucket, key: string): Promise<{ body: Readable; bytes: number } | undefined> {
  try {
    const res = await b.s3.send(new GetObjectCommand({ Bucket: b.bucket, Key: key }));
    return { body: res.Body as Readable, bytes: res.ContentLength ?? 0 };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Deletes an object; deleting one that is already gone succeeds. */
export async function deleteObject(b: Bucket, key: string): Promise<void> {
  await b.s3.send(new DeleteObjectCommand({ Bucket: b.bucket, Key: key }));
}

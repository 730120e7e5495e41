import { DeleteObjectCommand, GetObjectCommand } from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
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

/** The hex MD5 of an object's content, streamed through the hash rather than held. */
export async function md5OfObject(b: Bucket, key: string): Promise<string> {
  const res = await b.s3.send(new GetObjectCommand({ Bucket: b.bucket, Key: key }));
  const hash = createHash("md5");
  for await (const chunk of res.Body as Readable) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

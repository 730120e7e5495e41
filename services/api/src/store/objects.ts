import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { getObject, getObjectStream, isNotFound, type Bucket } from "@barge/core";

// The API's reads of single objects, composed from core's S3 calls.

/** An object's body stream and length, or undefined when there is no such object. */
export async function openObject(b: Bucket, key: string): Promise<{ body: Readable; bytes: number } | undefined> {
  try {
    const { body, bytes } = await getObject(b, key);
    return { body, bytes };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** The hex MD5 of an object's content, streamed through the hash rather than held. */
export async function md5OfObject(b: Bucket, key: string): Promise<string> {
  const hash = createHash("md5");
  for await (const chunk of await getObjectStream(b, key)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

import { randomBytes } from "node:crypto";
import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";

/** The key pair the embedded S3 accepts signatures from. */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

const credentialsSchema = z.object({
  accessKeyId: z.string().regex(/^[A-Z0-9]{16,128}$/),
  secretAccessKey: z.string().min(32).max(128),
});

const OWNER_ONLY = 0o600;

/** Where the embedded S3 keeps its credentials: next to its buckets, under `<data dir>/s3`. */
export function s3CredentialsFile(s3Dir: string): string {
  return join(s3Dir, "credentials.json");
}

/** Reads credentials written by `loadOrCreateS3Credentials`; fails with the path if missing or malformed. */
export function readS3Credentials(file: string): S3Credentials {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`cannot read embedded S3 credentials ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const parsed = credentialsSchema.safeParse(safeJson(text));
  if (!parsed.success) throw new Error(`embedded S3 credentials ${file} are malformed; delete the file to get new ones`);
  return parsed.data;
}

/**
 * The data directory's own key pair: made once from crypto randomness, kept in a file only its
 * owner can read, and reused on every restart so clients configured once keep working. A file
 * left readable by others (copied, restored from a backup) is narrowed back to the owner.
 */
export function loadOrCreateS3Credentials(s3Dir: string): S3Credentials {
  const file = s3CredentialsFile(s3Dir);
  const fresh: S3Credentials = {
    accessKeyId: `BARGE${randomBytes(10).toString("hex").toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString("base64url"),
  };
  try {
    // "wx": two stacks starting on one folder never overwrite each other's pair.
    writeFileSync(file, `${JSON.stringify(fresh, null, 2)}\n`, { mode: OWNER_ONLY, flag: "wx" });
    return fresh;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, OWNER_ONLY);
  return readS3Credentials(file);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

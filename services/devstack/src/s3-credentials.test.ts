import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadOrCreateS3Credentials, readS3Credentials, s3CredentialsFile } from "./s3-credentials.js";

const root = mkdtempSync(join(tmpdir(), "barge-s3-creds-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const fresh = (name: string) => mkdtempSync(join(root, name));

describe("the embedded S3's per-data-dir credentials", () => {
  it("are made once, owner-only, and read back the same", () => {
    const dir = fresh("new-");
    const made = loadOrCreateS3Credentials(dir);
    const file = s3CredentialsFile(dir);
    expect(file).toBe(join(dir, "credentials.json"));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(made.accessKeyId).toMatch(/^BARGE[0-9A-F]{20}$/);
    expect(made.secretAccessKey).toMatch(/^[A-Za-z0-9_-]{40}$/);
    expect(loadOrCreateS3Credentials(dir)).toEqual(made);
    expect(readS3Credentials(file)).toEqual(made);
    expect(loadOrCreateS3Credentials(fresh("other-")).secretAccessKey).not.toBe(made.secretAccessKey);
  });

  it("narrows a file left readable by others back to its owner, keeping the pair", () => {
    const dir = fresh("loose-");
    const made = loadOrCreateS3Credentials(dir);
    chmodSync(s3CredentialsFile(dir), 0o644);
    expect(loadOrCreateS3Credentials(dir)).toEqual(made);
    expect(statSync(s3CredentialsFile(dir)).mode & 0o777).toBe(0o600);
  });

  it("refuses a malformed or missing file with its path instead of replacing it", () => {
    const dir = fresh("bad-");
    const file = s3CredentialsFile(dir);
    writeFileSync(file, '{"accessKeyId":"S3RVER","secretAccessKey":"S3RVER"}', { mode: 0o600 });
    expect(() => loadOrCreateS3Credentials(dir)).toThrow(`embedded S3 credentials ${file} are malformed; delete the file to get new ones`);
    expect(readFileSync(file, "utf8")).toBe('{"accessKeyId":"S3RVER","secretAccessKey":"S3RVER"}');
    expect(() => readS3Credentials(join(dir, "none.json"))).toThrow(`cannot read embedded S3 credentials ${join(dir, "none.json")}: ENOENT`);
  });
});

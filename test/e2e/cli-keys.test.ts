import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { sdkClient, startBareApi, type TestApi } from "../support/api-harness.js";

// `barge keys` and `barge tenants` as child processes against a real API on real Postgres.

const ADMIN = "admin-key-0123456789abcdef";
const run = promisify(execFile);
let t: TestApi;

beforeAll(async () => {
  t = await startBareApi({ BARGE_ADMIN_KEY: ADMIN, TENANT_BATCH_CREATES_PER_MINUTE: "10", TENANT_FILE_UPLOADS_PER_MINUTE: "20" });
});
afterAll(async () => {
  await t?.close();
});

/** The CLI in a clean env; resolves with its exit code and output, whatever the code. */
async function barge(args: string[], env: Record<string, string> = { BARGE_ADMIN_KEY: ADMIN }) {
  const clean = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", BARGE_API_URL: t.url, ...env };
  try {
    const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", "services/cli/src/main.ts", ...args], { env: clean, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("barge keys", () => {
  test("create prints the secret once, list shows it redacted, revoke ends it at once", async () => {
    const made = await barge(["keys", "create", "--tenant", "team-a", "--name", "ci runner"]);
    expect([made.code, made.stderr.trim()]).toEqual([0, "The key is shown only this once: store it now."]);
    const key = JSON.parse(made.stdout) as { id: string; key: string; tenant: string; name: string };
    expect(key).toMatchObject({ object: "api_key", tenant: "team-a", name: "ci runner", key: expect.stringMatching(/^sk-barge-/) });
    expect((await sdkClient(t.url, key.key).files.list()).data).toEqual([]);

    const other = await barge(["keys", "create", "--tenant", "team-b", "--name", "other"]);
    const otherId = (JSON.parse(other.stdout) as { id: string }).id;
    const listed = await barge(["keys", "list", "--tenant", "team-a"]);
    expect(listed.code).toBe(0);
    expect(listed.stdout.trim().split("\n")).toEqual([expect.stringMatching(new RegExp(`^${key.id}  team-a  sk-…${key.key.slice(-4)}  \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z  active  ci runner$`))]);
    const all = await barge(["keys", "list"]);
    expect(all.stdout.trim().split("\n").map((l) => l.split("  ")[0])).toEqual([otherId, key.id]);
    expect(all.stdout).not.toContain(key.key);

    const revoked = await barge(["keys", "revoke", key.id]);
    expect([revoked.code, revoked.stdout.trim()]).toEqual([0, `revoked ${key.id}`]);
    await expect(sdkClient(t.url, key.key).files.list()).rejects.toMatchObject({ status: 401 });
    expect((await barge(["keys", "list", "--tenant", "team-a"])).stdout).toMatch(/  revoked \d{4}-\d\d-\d\dT[\d:.]+Z  ci runner\n$/);
  });

  test("without BARGE_ADMIN_KEY, or with a tenant key as it, the command fails and says why", async () => {
    const [unset, unknown, asTenant] = await Promise.all([
      barge(["keys", "list"], {}),
      barge(["keys", "revoke", "key_000000000000000000000000"]),
      barge(["keys", "list"], { BARGE_ADMIN_KEY: "not-the-admin-key-0123" }),
    ]);
    expect([unset.code, unset.stderr.split("\n")[0]]).toEqual([2, "keys needs BARGE_ADMIN_KEY in the environment"]);
    expect([unknown.code, unknown.stderr.trim()]).toEqual([1, "error: 404 No API key found with id 'key_000000000000000000000000'. (not_found)"]);
    expect([asTenant.code, asTenant.stderr.trim()]).toEqual([1, "error: 401 Incorrect API key provided. (invalid_api_key)"]);
  });
});

describe("barge tenants", () => {
  test("set merges weight and limits (unlimited, default), show and list read them back", async () => {
    const set = await barge(["tenants", "set", "team-c", "--weight", "2.5", "--limit", "batch_creates_per_minute=30", "--limit", "batches_per_day=unlimited"]);
    expect(set.code).toBe(0);
    expect(JSON.parse(set.stdout)).toMatchObject({ tenant: "team-c", weight: 2.5, overrides: { batch_creates_per_minute: 30, batches_per_day: null } });
    const back = await barge(["tenants", "set", "team-c", "--limit", "batch_creates_per_minute=default"]);
    expect(JSON.parse(back.stdout).overrides).toEqual({ batches_per_day: null });
    const shown = await barge(["tenants", "show", "team-c"]);
    expect(JSON.parse(shown.stdout)).toMatchObject({ weight: 2.5, limits: { batch_creates_per_minute: 10, file_uploads_per_minute: 20, batches_per_day: null }, keys: 0 });
    const list = await barge(["tenants", "list"]);
    // team-a and team-b have keys (the keys suite above), team-c settings.
    expect(list.stdout.trim().split("\n")).toContain("team-c  weight 2.5  0 keys");
  });

  test("a bad limit is refused: by the CLI when it is not a number, by the API when the name is unknown", async () => {
    const [notNumber, unknown, nothing] = await Promise.all([
      barge(["tenants", "set", "team-c", "--limit", "max_priority=high"]),
      barge(["tenants", "set", "team-c", "--limit", "max_prio=5"]),
      barge(["tenants", "set", "team-c"]),
    ]);
    expect([notNumber.code, notNumber.stderr.split("\n")[0]]).toEqual([2, "--limit max_priority wants a whole number, 'unlimited' or 'default', got 'high'"]);
    expect([unknown.code, unknown.stderr.trim()]).toEqual([1, `error: 400 Invalid value for 'limits': Unrecognized key: "max_prio". (invalid_value)`]);
    expect([nothing.code, nothing.stderr.split("\n")[0]]).toEqual([2, "tenants set needs --weight or --limit"]);
  });
});

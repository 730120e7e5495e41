import { sql } from "kysely";
import type { CheckResult } from "../preflight.js";
import type { Db } from "./connect.js";
import { isDbUnavailable, sqlState } from "./pg-errors.js";

// Name resolution failing may be a container not yet started beside us (compose), so it waits too.
const LOOKUP_CODES = new Set(["ENOTFOUND", "EAI_AGAIN"]);

/**
 * The start-up check of Postgres: one `SELECT 1` within `timeoutMs`. Out of reach or starting
 * up is worth a retry; refused credentials or a database that does not exist are settings in
 * DATABASE_URL, named as such. The reason quotes Postgres, never the URL (it holds the password).
 */
export async function checkDatabase(db: Db, timeoutMs: number): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  // pg's pool waits for a connection without limit: a host that drops packets would hang start-up.
  const silence = new Error(`no answer within ${timeoutMs / 1000} s`);
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(silence), timeoutMs);
  });
  try {
    await Promise.race([sql`SELECT 1`.execute(db), timeout]);
    return { ok: true };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const code = (err as { code?: unknown }).code;
    const state = sqlState(err);
    if (state === "28P01" || state === "28000") return { ok: false, retry: false, reason: `Postgres refused the credentials in DATABASE_URL (${message})` };
    if (state === "3D000") return { ok: false, retry: false, reason: `the database DATABASE_URL names does not exist (${message})` };
    if (isDbUnavailable(err) || (typeof code === "string" && LOOKUP_CODES.has(code)) || err === silence) {
      return { ok: false, retry: true, reason: `Postgres is unreachable (${message})` };
    }
    return { ok: false, retry: false, reason: `Postgres refused the connection (${state ? `SQLSTATE ${state}: ` : ""}${message})` };
  } finally {
    clearTimeout(timer);
  }
}

// How Barge tells Postgres failures apart. A data exception (class 22: a NUL in a text value,
// a bad cast) or an integrity violation (class 23: a constraint) fails the same way on every
// retry, so retrying it only repeats the failure; anything else (a dropped connection, a
// serialization failure, a shutdown) may pass on the next try.

/** The SQLSTATE pg attached to an error, or undefined when it did not come from Postgres. */
export function sqlState(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** Whether Postgres refused the statement for its data (SQLSTATE class 22 or 23): a retry fails again. */
export function isPermanentDbError(err: unknown): boolean {
  const state = sqlState(err);
  return state !== undefined && (state.startsWith("22") || state.startsWith("23"));
}

const UNAVAILABLE_STATES = new Set(["57P01", "57P02", "57P03", "53300"]);
const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH"]);

/**
 * Whether the statement failed because Postgres could not be reached or was going away (a
 * connection refused or dropped, SQLSTATE class 08, a shutdown, too many connections): the
 * request was fine, and the same request may pass once the database is back.
 */
export function isDbUnavailable(err: unknown): boolean {
  const state = sqlState(err);
  if (state !== undefined) return state.startsWith("08") || UNAVAILABLE_STATES.has(state);
  if (typeof err !== "object" || err === null) return false;
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code === "string" && NETWORK_CODES.has(code)) return true;
  // pg reports a connection the server closed mid-query with this message and no code.
  return typeof message === "string" && message.startsWith("Connection terminated");
}

import { describe, expect, it } from "vitest";
import { isDbUnavailable, isPermanentDbError, sqlState } from "./pg-errors.js";

// pg puts the SQLSTATE on its DatabaseError as `code`; Node's own errors use `code` too (ECONNREFUSED).
const pgError = (code: string) => Object.assign(new Error("refused"), { code });

describe("pg errors", () => {
  it("reads the SQLSTATE, and nothing from errors that do not carry one", () => {
    expect(sqlState(pgError("22021"))).toBe("22021");
    expect(sqlState(pgError("ECONNREFUSED"))).toBeUndefined();
    expect(sqlState(new Error("plain"))).toBeUndefined();
    expect(sqlState("22021")).toBeUndefined();
    expect(sqlState(null)).toBeUndefined();
  });

  it("calls data exceptions and integrity violations permanent, everything else transient", () => {
    // 22021 invalid byte sequence (a NUL in text), 22P05 untranslatable character, 22023, 23505 unique, 23514 check.
    for (const code of ["22021", "22P05", "22023", "23505", "23514"]) expect(isPermanentDbError(pgError(code))).toBe(true);
    // 40001 serialization failure, 57P01 admin shutdown, 08006 connection failure, 53300 too many connections.
    for (const code of ["40001", "57P01", "08006", "53300", "ECONNRESET"]) expect(isPermanentDbError(pgError(code))).toBe(false);
    expect(isPermanentDbError(new Error("no code"))).toBe(false);
  });

  it("calls a database out of reach unavailable: connection classes, shutdowns, refused and dropped sockets", () => {
    for (const code of ["08006", "08001", "57P01", "57P03", "53300", "ECONNREFUSED", "ECONNRESET"]) expect(isDbUnavailable(pgError(code))).toBe(true);
    expect(isDbUnavailable(new Error("Connection terminated unexpectedly"))).toBe(true);
    // A refused value, a serialization failure and an error with no code are something else.
    for (const code of ["22021", "23505", "40001"]) expect(isDbUnavailable(pgError(code))).toBe(false);
    expect(isDbUnavailable(new Error("no code"))).toBe(false);
    expect(isDbUnavailable(null)).toBe(false);
  });
});

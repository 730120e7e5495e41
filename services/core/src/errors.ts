/**
 * The few error types Barge raises. The API maps them to HTTP in one place (`api/src/errors.ts`);
 * the body is OpenAI's `{"error":{"message","type","param","code"}}`.
 */
export class BargeError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 408 | 409 | 413 | 429 | 500 | 502 | 503,
    readonly type: string,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A malformed or unacceptable request (400). */
export class InvalidRequest extends BargeError {
  constructor(message: string, param: string | null = null, code: string | null = null) {
    super(400, "invalid_request_error", message, code, param);
  }
}

/** An id that names nothing this tenant can see (404). */
export class NotFound extends BargeError {
  constructor(what: string, id: string, param: string | null = null) {
    super(404, "invalid_request_error", `No ${what} found with id '${id}'.`, "not_found", param);
  }
}

/** The request conflicts with the object's current state (409). */
export class Conflict extends BargeError {
  constructor(message: string, code: string | null = "conflict") {
    super(409, "invalid_request_error", message, code);
  }
}

/** Over a global or tenant limit; retry later (429). `headers` go out with the answer (OpenAI's x-ratelimit-*). */
export class RateLimited extends BargeError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
    code = "rate_limit_exceeded",
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(429, "rate_limit_error", message, code);
  }
}

/** A worker's lease or fence no longer holds: it must stop touching that work at once. */
export class LeaseLost extends Error {
  constructor(what: string) {
    super(`lease lost: ${what}`);
    this.name = "LeaseLost";
  }
}

/** An input object no longer has the ETag it was validated with: it was replaced, so none of it may be read as validated. */
export class InputChanged extends Error {
  constructor(readonly key: string) {
    super(`input object ${key} changed since it was validated`);
    this.name = "InputChanged";
  }
}

import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import { BargeError, isDbUnavailable, isTransient, RateLimited, s3OutageReason, sqlState, type Logger } from "@barge/core";

/** OpenAI's error body. */
export function errorBody(message: string, type: string, param: string | null, code: string | null) {
  return { error: { message, type, param, code } };
}

/** Answers with an error in OpenAI's shape. */
export function sendError(
  c: Context,
  status: ContentfulStatusCode,
  message: string,
  type: string,
  param: string | null = null,
  code: string | null = null,
): Response {
  // The OpenAI SDKs retry 409 by default; ours are state conflicts that a retry cannot fix.
  if (status === 409) c.header("x-should-retry", "false");
  return c.json(errorBody(message, type, param, code), status);
}

/** Seconds a client is told to wait when Postgres or S3 is unreachable. */
const OUTAGE_RETRY_AFTER_SECONDS = 5;

/**
 * The one error handler: Barge errors and zod failures become 4xx in OpenAI's shape; Postgres or
 * S3 out of reach is a 503 with Retry-After; anything else is a logged 500.
 */
export function errorHandler(log: Logger): ErrorHandler {
  return (err, c) => {
    if (err instanceof BargeError) {
      if (err instanceof RateLimited) {
        c.header("Retry-After", String(err.retryAfterSeconds));
        for (const [name, value] of Object.entries(err.headers)) c.header(name, value);
      }
      return sendError(c, err.status, err.message, err.type, err.param, err.code);
    }
    if (err instanceof z.ZodError) {
      const { message, param, code } = describeIssue(err.issues[0]);
      return sendError(c, 400, message, "invalid_request_error", param, code);
    }
    const state = sqlState(err);
    if (state?.startsWith("22")) {
      // A value the database refused as data (a NUL or bad byte sequence, a malformed literal)
      // is the request's fault: no retry of the same request can succeed.
      log.warn({ sqlState: state, method: c.req.method, path: c.req.routePath }, "request refused by the database as invalid data");
      return sendError(c, 400, "The request holds a value the database cannot store (such as a U+0000 character).", "invalid_request_error", null, "invalid_value");
    }
    // The request was fine; a dependency is down, restarting or set up wrong (a missing bucket,
    // refused S3 credentials). A 503 with Retry-After tells clients (the OpenAI SDKs retry it) to
    // come back, where a 500 would suggest a bug; the message names which and why. S3 is asked
    // first: its connection errors carry the same codes as Postgres's.
    const s3Reason = s3OutageReason(err);
    const outage = s3Reason ?? (isDbUnavailable(err) ? "Postgres is unreachable" : isTransient(err) ? "Postgres or S3 is unreachable" : undefined);
    if (outage !== undefined) {
      log.warn({ reason: outage, err, method: c.req.method, path: c.req.routePath }, "request failed: a dependency is unavailable");
      return serviceUnavailable(c, `${upperFirst(outage)}; retry shortly.`);
    }
    if (err instanceof HTTPException) {
      return sendError(c, err.status as ContentfulStatusCode, err.message || "Bad request.", "invalid_request_error");
    }
    log.error({ err, method: c.req.method, path: c.req.path }, "unhandled error");
    return sendError(c, 500, "The server had an error while processing your request.", "server_error");
  };
}

/** A 503 service_unavailable with Retry-After: a dependency of Barge (not the request) is at fault. */
export function serviceUnavailable(c: Context, message: string): Response {
  c.header("Retry-After", String(OUTAGE_RETRY_AFTER_SECONDS));
  return sendError(c, 503, message, "server_error", null, "service_unavailable");
}

const upperFirst = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** The 404 for routes that do not exist, in the same shape as every other error. */
export const notFoundHandler: NotFoundHandler = (c) =>
  sendError(c, 404, `Unknown request URL: ${c.req.method} ${c.req.path}.`, "invalid_request_error", null, "unknown_url");

/** OpenAI-style message, param and code for a zod issue (parsed with `reportInput`). */
function describeIssue(issue: z.core.$ZodIssue | undefined): { message: string; param: string | null; code: string } {
  if (!issue) return { message: "Invalid request.", param: null, code: "invalid_value" };
  const param = issue.path.length > 0 ? issue.path.map(String).join(".") : null;
  if (param === null) return { message: `Invalid request body: ${issue.message}.`, param, code: "invalid_value" };
  if (issue.input === undefined) {
    return { message: `Missing required parameter: '${param}'.`, param, code: "missing_required_parameter" };
  }
  return {
    message: `Invalid value for '${param}': ${issue.message}.`,
    param,
    code: issue.code === "invalid_type" ? "invalid_type" : "invalid_value",
  };
}

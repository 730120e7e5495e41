import { Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { bearerToken, sameSecret } from "../auth.js";
import type { ApiDeps, AppEnv } from "../deps.js";
import { sendError } from "../errors.js";
import { EventBodyError, MAX_RECORDS, parseRecords, type ParsedRecords } from "../s3-events/records.js";
import { httpsFetch, parseSnsMessage, SnsUnreachable, SnsVerifier, snsUrl } from "../s3-events/sns.js";

/** Largest event body taken; S3 servers send a few KiB per record. */
export const MAX_EVENT_BODY_BYTES = 1024 * 1024;

/** How long a fetch from SNS (a certificate, a SubscribeURL) may take. */
const SNS_FETCH_TIMEOUT_MS = 10_000;

/** The answer: creation records handed to the trigger, how many of them were new, records of other events skipped. */
export const s3EventsAnswer = z.object({ received: z.number().int(), new: z.number().int(), ignored: z.number().int() });

/**
 * The body, as documented: an S3 `Records[]` event. An SNS envelope (told apart by its
 * `x-amz-sns-message-type` header) is taken too; its `Message` carries the same event.
 */
export const s3EventsBody = z.object({ Records: z.array(z.record(z.string(), z.unknown())).max(MAX_RECORDS) }).loose();


/**
 * Admits a request carrying `S3_EVENTS_TOKEN` as a Bearer header or `?token=`; with no token set
 * the route is not served (404), so an unauthenticated event endpoint is never open.
 */
function requireEventsToken(token: string | undefined): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (!token) {
      return sendError(c, 404, "POST /v1/s3-events is off: set S3_EVENTS_TOKEN to turn it on.", "invalid_request_error", null, "s3_events_disabled");
    }
    const given = bearerToken(c.req.header("authorization") ?? "") || (c.req.query("token") ?? "");
    if (!sameSecret(given, token)) {
      return sendError(
        c,
        401,
        given ? "Incorrect S3 events token." : "Send S3_EVENTS_TOKEN as 'Authorization: Bearer <token>' or '?token=<token>'.",
        "invalid_request_error",
        null,
        "invalid_s3_events_token",
      );
    }
    await next();
  };
}

/** The body as JSON, or a 400: S3 servers and SNS send JSON, SNS under `text/plain`, so the content type is not checked. */
async function jsonBody(req: Request): Promise<unknown> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(await req.arrayBuffer());
  } catch {
    throw new EventBodyError("The body is not UTF-8.");
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new EventBodyError("The body is not JSON.");
  }
}

/** S3's `s3:TestEvent`, sent when notifications are first set on a bucket: it names no object. */
const isTestEvent = (body: unknown) => typeof body === "object" && body !== null && (body as { Event?: unknown }).Event === "s3:TestEvent";

const records = (body: unknown): ParsedRecords => (isTestEvent(body) ? { objects: [], ignored: 0 } : parseRecords(body));

/**
 * `POST /v1/s3-events`: S3 event notifications from Ceph RGW and MinIO (a `Records[]` body), or
 * from AWS S3 through an SNS HTTPS subscription (signature-checked, confirmed on first contact).
 * The created objects go to the trigger, which records them and answers at once; replays are
 * handed on as they come, since the trigger keeps each object version once.
 */
export function s3EventsRoutes(deps: ApiDeps) {
  const r = new Hono<AppEnv>();
  const fetchSns = deps.snsFetch ?? httpsFetch(SNS_FETCH_TIMEOUT_MS);
  const sns = new SnsVerifier(fetchSns);
  r.use("*", requireEventsToken(deps.config.S3_EVENTS_TOKEN));
  r.use(
    "*",
    bodyLimit({
      maxSize: MAX_EVENT_BODY_BYTES,
      onError: (c) => sendError(c, 413, `An event body may hold at most ${MAX_EVENT_BODY_BYTES} bytes.`, "invalid_request_error", null, "body_too_large"),
    }),
  );
  r.post("/", async (c) => {
    const trigger = deps.trigger;
    if (!trigger) {
      return sendError(c, 503, "Serverless mode is off: no trigger takes S3 events on this server.", "server_error", null, "serverless_disabled");
    }
    const body = await jsonBody(c.req.raw);
    const hand = async ({ objects, ignored }: ParsedRecords) =>
      c.json({ received: objects.length, new: objects.length > 0 ? await trigger.landed(objects) : 0, ignored });
    const snsType = c.req.header("x-amz-sns-message-type");
    if (snsType === undefined) return hand(records(body));
    const message = parseSnsMessage(body);
    if (message.Type !== snsType) throw new EventBodyError(`x-amz-sns-message-type says ${snsType}, the body ${message.Type}.`);
    await sns.verify(message);
    if (message.Type === "SubscriptionConfirmation") {
      const url = snsUrl(message.SubscribeURL, "SubscribeURL");
      await fetchSns(url.href).catch(() => {
        throw new SnsUnreachable("subscription confirmation");
      });
      deps.log.info({ topic: message.TopicArn }, "SNS subscription confirmed");
    }
    if (message.Type !== "Notification") return hand({ objects: [], ignored: 0 });
    let inner: unknown;
    try {
      inner = JSON.parse(message.Message);
    } catch {
      throw new EventBodyError("The SNS notification's 'Message' is not JSON.");
    }
    return hand(records(inner));
  });
  return r;
}

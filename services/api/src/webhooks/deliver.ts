import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import { backoffDelay } from "@barge/core";
import type { ApiDeps } from "../deps.js";
import { startLoop, type Loop } from "@barge/core";
import { claimDueDeliveries, fanOutEvents, markAttemptFailed, markDelivered, type DueDelivery } from "../store/webhooks.js";
import { internalAddressIn, InternalDestination, publicOnlyLookup } from "./destination.js";
import { signWebhook } from "./sign.js";

const FAN_OUT_BATCH = 100;
/** Deliveries attempted at once by one replica. */
const CLAIM_BATCH = 16;
const REQUEST_TIMEOUT_MS = 10_000;
/** Longer than an attempt can take, so a live attempt is never claimed again. */
const ATTEMPT_LEASE_SECONDS = 30;
const MAX_BACKOFF_SECONDS = 3600;

/** OpenAI's webhook event for a batch's final state. */
export function webhookEvent(d: Pick<DueDelivery, "event_id" | "type" | "batch_id" | "created_at">) {
  return { id: d.event_id, object: "event" as const, type: d.type, created_at: Math.floor(d.created_at.getTime() / 1000), data: { id: d.batch_id } };
}

/** Seconds before attempt `attempts + 1`: 1, 2, 4, ... capped at an hour. */
export function backoffSeconds(attempts: number): number {
  return backoffDelay(attempts, { base: 1, cap: MAX_BACKOFF_SECONDS });
}

/** What one attempt came to: null when the endpoint answered 2xx; `final` when retrying cannot help. */
type Outcome = { error: string; final: boolean } | null;

/**
 * POSTs one signed event. A batch's own endpoint (not one of the operator's WEBHOOK_URLS) must
 * not be internal, unless WEBHOOK_ALLOW_PRIVATE: checked on the URL, and on every address its
 * host resolves to as the connection is made (see destination.ts).
 */
async function attempt(secret: string, d: DueDelivery, guarded: boolean): Promise<Outcome> {
  // A literal address connects without a lookup, so it is checked here; a name, as it resolves.
  const literal = guarded ? internalAddressIn(d.url) : null;
  if (literal !== null) return { error: `refused: ${literal}`, final: true };
  const body = JSON.stringify(webhookEvent(d));
  const timestamp = Math.floor(Date.now() / 1000);
  const headers = {
    "content-type": "application/json",
    "user-agent": "barge-webhooks/1",
    "webhook-id": d.event_id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": signWebhook(secret, d.event_id, timestamp, body),
  };
  try {
    const status = await post(d.url, headers, body, guarded ? publicOnlyLookup : undefined);
    return status >= 200 && status < 300 ? null : { error: `HTTP ${status}`, final: false };
  } catch (err) {
    if (err instanceof InternalDestination) return { error: `refused: ${err.message}`, final: true };
    return { error: err instanceof Error ? `${err.name}: ${err.message}` : String(err), final: false };
  }
}

/**
 * POSTs `body` and resolves to the response status, without following redirects. node:http rather
 * than fetch, because it takes the `lookup` that guards where a connection may go.
 */
function post(url: string, headers: Record<string, string>, body: string, lookup: LookupFunction | undefined): Promise<number> {
  const target = new URL(url);
  const send = target.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      target,
      {
        method: "POST",
        headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        ...(lookup ? { lookup } : {}),
      },
      (res) => {
        // The body is not needed, but reading it frees the connection.
        res.resume();
        res.once("end", () => resolve(res.statusCode ?? 0));
        res.once("error", reject);
      },
    );
    req.once("error", reject);
    req.end(body);
  });
}

/**
 * One round of the outbox: fan new events out to their endpoints, then attempt every delivery
 * that is due. At least once: an endpoint may see an event again after a crash or a lost answer,
 * and `webhook-id` (the event id) is how it tells. Returns whether there was anything to do.
 */
export async function deliverWebhooks(deps: Pick<ApiDeps, "db" | "config" | "log">): Promise<boolean> {
  const secret = deps.config.WEBHOOK_SECRET;
  // Without a secret nothing can be signed; events are still recorded, with nowhere to go.
  const fanned = await fanOutEvents(deps.db, secret ? deps.config.WEBHOOK_URLS : [], FAN_OUT_BATCH);
  if (!secret) return fanned > 0;
  const due = await claimDueDeliveries(deps.db, CLAIM_BATCH, ATTEMPT_LEASE_SECONDS);
  await Promise.all(
    due.map(async (d) => {
      const guarded = !deps.config.WEBHOOK_ALLOW_PRIVATE && !deps.config.WEBHOOK_URLS.includes(d.url);
      const outcome = await attempt(secret, d, guarded);
      if (outcome === null) return markDelivered(deps.db, d);
      const { error, final } = outcome;
      const retry = !final && d.attempts < deps.config.WEBHOOK_MAX_ATTEMPTS ? backoffSeconds(d.attempts) : null;
      deps.log.warn({ event: d.event_id, url: d.url, attempts: d.attempts, error, retryInSeconds: retry }, "webhook delivery failed");
      return markAttemptFailed(deps.db, d, error, retry);
    }),
  );
  return fanned > 0 || due.length > 0;
}

/** Runs the webhook outbox in the background, polling as often as the validator does. */
export function startWebhookDelivery(deps: ApiDeps): Loop {
  return startLoop("webhooks", deps.log, deps.config.API_POLL_MS, () => deliverWebhooks(deps));
}

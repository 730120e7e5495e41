import type { ApiDeps } from "../deps.js";
import { startLoop, type Loop } from "../loop.js";
import { claimDueDeliveries, fanOutEvents, markAttemptFailed, markDelivered, type DueDelivery } from "../store/webhooks.js";
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
  return Math.min(2 ** (attempts - 1), MAX_BACKOFF_SECONDS);
}

/** POSTs one signed event; resolves to an error text, or null when the endpoint answered 2xx. */
async function attempt(secret: string, d: DueDelivery): Promise<string | null> {
  const body = JSON.stringify(webhookEvent(d));
  const timestamp = Math.floor(Date.now() / 1000);
  try {
    const res = await fetch(d.url, {
      method: "POST",
      redirect: "manual",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      headers: {
        "content-type": "application/json",
        "user-agent": "barge-webhooks/1",
        "webhook-id": d.event_id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": signWebhook(secret, d.event_id, timestamp, body),
      },
      body,
    });
    // The body is not needed, but reading it frees the connection.
    await res.arrayBuffer().catch(() => undefined);
    return res.status >= 200 && res.status < 300 ? null : `HTTP ${res.status}`;
  } catch (err) {
    return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  }
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
      const error = await attempt(secret, d);
      if (error === null) return markDelivered(deps.db, d);
      const retry = d.attempts < deps.config.WEBHOOK_MAX_ATTEMPTS ? backoffSeconds(d.attempts) : null;
      deps.log.warn({ event: d.event_id, url: d.url, attempts: d.attempts, error, retryInSeconds: retry }, "webhook delivery failed");
      return markAttemptFailed(deps.db, d, error, retry);
    }),
  );
  return fanned > 0 || due.length > 0;
}

/** Runs the webhook outbox in the background, polling as often as the validator does. */
export function startWebhookDelivery(deps: ApiDeps): Loop {
  return startLoop("webhooks", deps.log, deps.config.AGENT_POLL_MS, () => deliverWebhooks(deps));
}

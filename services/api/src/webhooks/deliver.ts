import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import { backoffDelay, startLoop, type Loop } from "@barge/core";
import type { ApiDeps } from "../deps.js";
import { claimDueDeliveries, fanOutEvents, markAttemptFailed, markDelivered, type DueDelivery } from "../store/webhooks.js";
import { internalAddressIn, InternalDestination, publicOnlyLookup, redactUrl } from "./destination.js";
import { signWebhook } from "./sign.js";

const FAN_OUT_BATCH = 100;
/**
 * Deliveries one replica has in flight at most. An attempt that waits on a silent endpoint costs
 * only a socket, so the bound is generous: it takes many slow destinations to fill it.
 */
const MAX_IN_FLIGHT = 64;
/** Attempts in flight to one destination at most, so a slow endpoint holds a few slots, never all. */
const PER_DESTINATION = 2;
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
async function attempt(secret: string, d: DueDelivery, guarded: boolean, stop: AbortSignal): Promise<Outcome> {
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
    const status = await post(d.url, headers, body, guarded ? publicOnlyLookup : undefined, stop);
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
function post(url: string, headers: Record<string, string>, body: string, lookup: LookupFunction | undefined, stop: AbortSignal): Promise<number> {
  const target = new URL(url);
  const send = target.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      target,
      {
        method: "POST",
        headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
        signal: AbortSignal.any([stop, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
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

/** What the deliverer needs: the database, the settings, and somewhere to report failures. */
export type DelivererDeps = Pick<ApiDeps, "db" | "config"> & { log: FailureLog };

/** The logger calls the deliverer makes; a pino `Logger` is one. */
export interface FailureLog {
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/**
 * The webhook outbox of one replica. A round fans new events out to their endpoints and starts an
 * attempt for every due delivery its free slots allow, without waiting for them: a slow endpoint
 * then delays only its own deliveries, and the next round claims the others meanwhile. At least
 * once: an endpoint may see an event again after a crash or a lost answer, and `webhook-id` (the
 * event id) is how it tells.
 */
export class WebhookDeliverer {
  private readonly inFlight = new Map<string, number>();
  private readonly running = new Set<Promise<void>>();
  private readonly stopping = new AbortController();

  /** `onFree` runs when an attempt ends, so a loop can claim the next one without waiting a poll. */
  constructor(
    private readonly deps: DelivererDeps,
    private readonly onFree: () => void = () => {},
  ) {}

  /** Fans out and starts what is due and fits; returns whether there was anything to do. */
  async round(): Promise<boolean> {
    const { db, config } = this.deps;
    const secret = config.WEBHOOK_SECRET;
    // Without a secret nothing can be signed; events are still recorded, with nowhere to go.
    const fanned = await fanOutEvents(db, secret ? config.WEBHOOK_URLS : [], FAN_OUT_BATCH);
    const free = MAX_IN_FLIGHT - this.running.size;
    if (!secret || free <= 0 || this.stopping.signal.aborted) return fanned > 0;
    const due = await claimDueDeliveries(db, { limit: free, leaseSeconds: ATTEMPT_LEASE_SECONDS, perDestination: PER_DESTINATION, inFlight: this.inFlight });
    for (const d of due) this.start(secret, d);
    return fanned > 0 || due.length > 0;
  }

  /** Resolves when every attempt started so far has been recorded. */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
  }

  /** Aborts the attempts in flight (each is recorded as a failed attempt, to be retried) and waits for them. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.settled();
  }

  private start(secret: string, d: DueDelivery): void {
    this.inFlight.set(d.destination, (this.inFlight.get(d.destination) ?? 0) + 1);
    // Nothing awaits an attempt as it runs, so its failure to record (the database away) is logged
    // here rather than left to reject; the lease expires and another attempt follows.
    const run = this.deliver(secret, d)
      .catch((err: unknown) => this.deps.log.error({ err, event: d.event_id, url: redactUrl(d.url) }, "webhook attempt not recorded"))
      .finally(() => {
        this.running.delete(run);
        const left = this.inFlight.get(d.destination)! - 1;
        if (left === 0) this.inFlight.delete(d.destination);
        else this.inFlight.set(d.destination, left);
        this.onFree();
      });
    this.running.add(run);
  }

  private async deliver(secret: string, d: DueDelivery): Promise<void> {
    const { db, config, log } = this.deps;
    const guarded = !config.WEBHOOK_ALLOW_PRIVATE && !config.WEBHOOK_URLS.includes(d.url);
    const outcome = await attempt(secret, d, guarded, this.stopping.signal);
    if (outcome === null) return markDelivered(db, d);
    const { error, final } = outcome;
    const retry = !final && d.attempts < config.WEBHOOK_MAX_ATTEMPTS ? backoffSeconds(d.attempts) : null;
    // The URL may carry a token in its query or userinfo; neither reaches the log.
    log.warn({ event: d.event_id, url: redactUrl(d.url), attempts: d.attempts, error, retryInSeconds: retry }, "webhook delivery failed");
    await markAttemptFailed(db, d, error, retry);
  }
}

/** One round of the outbox that waits for the attempts it started; returns whether there was anything to do. */
export async function deliverWebhooks(deps: DelivererDeps): Promise<boolean> {
  const deliverer = new WebhookDeliverer(deps);
  const busy = await deliverer.round();
  await deliverer.settled();
  return busy;
}

/** Runs the webhook outbox in the background, polling as often as the validator does. */
export function startWebhookDelivery(deps: ApiDeps): Loop {
  const deliverer = new WebhookDeliverer(deps, () => loop.wake());
  const loop: Loop = startLoop("webhooks", deps.log, deps.config.API_POLL_MS, () => deliverer.round());
  return {
    wake: () => loop.wake(),
    stop: async () => {
      await loop.stop();
      await deliverer.stop();
    },
  };
}

import { sql } from "kysely";
import { storableText, type Db } from "@barge/core";

/** One event due for one endpoint, claimed for an attempt. */
export interface DueDelivery {
  event_id: string;
  url: string;
  /** The URL's host and port, lower case: what per-destination concurrency is counted by. */
  destination: string;
  /** Attempts so far, this one included. */
  attempts: number;
  type: string;
  batch_id: string;
  created_at: Date;
}

/**
 * Gives up to `limit` new events one delivery row per endpoint: every configured URL plus the
 * batch's own `webhook_url`. SKIP LOCKED lets every API replica run this at once.
 * Returns how many events it handled.
 */
export function fanOutEvents(db: Db, urls: string[], limit: number): Promise<number> {
  return db.transaction().execute(async (tx) => {
    const events = await tx
      .selectFrom("webhook_events")
      .select(["id", "batch_id"])
      .where("fanned_out", "=", false)
      .orderBy("created_at")
      .limit(limit)
      .forUpdate()
      .skipLocked()
      .execute();
    if (events.length === 0) return 0;
    const own = await tx
      .selectFrom("batches")
      .select(["id", "webhook_url"])
      .where("id", "in", events.map((e) => e.batch_id))
      .where("webhook_url", "is not", null)
      .execute();
    const ownUrl = new Map(own.map((b) => [b.id, b.webhook_url]));
    const rows = events.flatMap((e) => {
      const targets = new Set(urls);
      const extra = ownUrl.get(e.batch_id);
      if (extra) targets.add(extra);
      return [...targets].map((url) => ({ event_id: e.id, url }));
    });
    if (rows.length > 0) await tx.insertInto("webhook_deliveries").values(rows).onConflict((oc) => oc.doNothing()).execute();
    await tx.updateTable("webhook_events").set({ fanned_out: true }).where("id", "in", events.map((e) => e.id)).execute();
    return events.length;
  });
}

/** Where a claim may go: at most `perDestination` attempts in flight to one destination. */
export interface ClaimLimits {
  /** Deliveries to claim at most. */
  limit: number;
  leaseSeconds: number;
  perDestination: number;
  /** Attempts this replica has in flight, by destination (as `DueDelivery.destination` names it). */
  inFlight: ReadonlyMap<string, number>;
}

/** Due rows one claim looks at: enough that a few busy destinations at the head cannot hide the rest. */
const CLAIM_SCAN = 256;

/**
 * Claims up to `limit` deliveries that are due, counting the attempt and pushing their next
 * attempt `leaseSeconds` out: a replica that dies mid-attempt leaves the delivery to be retried
 * once that passes, by whichever replica is up. One statement, SKIP LOCKED: never claimed twice.
 * A destination (a URL's host and port) gets no more than `perDestination` attempts in flight,
 * counting those already running, so endpoints that never answer hold a few slots, not all:
 * destinations at their limit are skipped before the scan, the rest ranked by due time within it.
 */
export async function claimDueDeliveries(db: Db, c: ClaimLimits): Promise<DueDelivery[]> {
  const destination = sql`coalesce(lower(substring(url from '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#]*@)?([^/?#]*)')), url)`;
  const { rows } = await sql<DueDelivery>`
    WITH busy AS (
      SELECT * FROM unnest(${[...c.inFlight.keys()]}::text[], ${[...c.inFlight.values()]}::int[]) AS b(destination, in_flight)
    ), due AS (
      SELECT event_id, url, next_attempt_at, ${destination} AS destination FROM webhook_deliveries
      WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
        AND NOT EXISTS (SELECT 1 FROM busy WHERE busy.destination = ${destination} AND busy.in_flight >= ${c.perDestination})
      ORDER BY next_attempt_at
      LIMIT ${CLAIM_SCAN}
      FOR UPDATE SKIP LOCKED
    ), ranked AS (
      SELECT due.*, row_number() OVER (PARTITION BY destination ORDER BY next_attempt_at) AS n FROM due
    ), picked AS (
      SELECT ranked.event_id, ranked.url, ranked.destination FROM ranked LEFT JOIN busy USING (destination)
      WHERE ranked.n + coalesce(busy.in_flight, 0) <= ${c.perDestination}
      ORDER BY ranked.next_attempt_at
      LIMIT ${c.limit}
    )
    UPDATE webhook_deliveries d
    SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => ${c.leaseSeconds})
    FROM webhook_events e, picked p
    WHERE e.id = d.event_id AND d.event_id = p.event_id AND d.url = p.url
    RETURNING d.event_id, d.url, p.destination, d.attempts, e.type, e.batch_id, e.created_at
  `.execute(db);
  return rows;
}

/** Records a delivery the endpoint accepted. */
export async function markDelivered(db: Db, d: Pick<DueDelivery, "event_id" | "url">): Promise<void> {
  await db.updateTable("webhook_deliveries").set({ delivered_at: new Date(), last_error: null }).where("event_id", "=", d.event_id).where("url", "=", d.url).execute();
}

/** Records a failed attempt: retried after `retryInSeconds`, or given up when that is null. */
export async function markAttemptFailed(db: Db, d: Pick<DueDelivery, "event_id" | "url">, error: string, retryInSeconds: number | null): Promise<void> {
  await db
    .updateTable("webhook_deliveries")
    .set(
      retryInSeconds === null
        ? { failed_at: new Date(), last_error: storableText(error) }
        : { next_attempt_at: sql<Date>`now() + make_interval(secs => ${retryInSeconds})`, last_error: storableText(error) },
    )
    .where("event_id", "=", d.event_id)
    .where("url", "=", d.url)
    .execute();
}

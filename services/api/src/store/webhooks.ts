import { sql } from "kysely";
import type { Db } from "@barge/core";

/** One event due for one endpoint, claimed for an attempt. */
export interface DueDelivery {
  event_id: string;
  url: string;
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

/**
 * Claims up to `limit` deliveries that are due, counting the attempt and pushing their next
 * attempt `leaseSeconds` out: a replica that dies mid-attempt leaves the delivery to be retried
 * once that passes, by whichever replica is up. One statement, SKIP LOCKED: never claimed twice.
 */
export async function claimDueDeliveries(db: Db, limit: number, leaseSeconds: number): Promise<DueDelivery[]> {
  const { rows } = await sql<DueDelivery>`
    UPDATE webhook_deliveries d
    SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => ${leaseSeconds})
    FROM webhook_events e
    WHERE e.id = d.event_id AND (d.event_id, d.url) IN (
      SELECT event_id, url FROM webhook_deliveries
      WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
      ORDER BY next_attempt_at
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED)
    RETURNING d.event_id, d.url, d.attempts, e.type, e.batch_id, e.created_at
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
        ? { failed_at: new Date(), last_error: error }
        : { next_attempt_at: sql<Date>`now() + make_interval(secs => ${retryInSeconds})`, last_error: error },
    )
    .where("event_id", "=", d.event_id)
    .where("url", "=", d.url)
    .execute();
}

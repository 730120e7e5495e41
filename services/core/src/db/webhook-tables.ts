import type { Generated } from "kysely";
import type { CreatedAt, Timestamp } from "./column-types.js";

// The webhook outbox and its deliveries (see api/src/webhooks/).

/** The webhook outbox: one row per final batch state, written by the `batches_final_state` trigger. */
export interface WebhookEventsTable {
  id: string;
  type: string;
  batch_id: string;
  created_at: CreatedAt;
  fanned_out: Generated<boolean>;
}

/** One event to one endpoint, with its retry state. */
export interface WebhookDeliveriesTable {
  event_id: string;
  url: string;
  attempts: Generated<number>;
  next_attempt_at: Generated<Date>;
  delivered_at: Timestamp | null;
  failed_at: Timestamp | null;
  last_error: string | null;
}

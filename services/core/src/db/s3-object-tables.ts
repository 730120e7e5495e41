import type { Generated, ColumnType } from "kysely";
import type { CreatedAt, Timestamp } from "./column-types.js";

// Serverless mode's record of landed objects (see api/src/trigger/).

/** How the acceptor settled a landed object: a batch started, it failed before one could, or the key held other bytes by then. */
export type S3ObjectOutcome = "batch" | "failed" | "overwritten";

/** One version of an object that landed under the trigger prefix (serverless mode), recorded once. */
export interface S3ObjectsTable {
  bucket: string;
  key: string;
  /** Unquoted, as `landedObjectSchema` keeps it. */
  etag: string;
  version_id: string | null;
  size: number;
  first_seen_at: CreatedAt;
  batch_id: string | null;
  outcome: S3ObjectOutcome | null;
  /** Why the acceptor failed the object when no batch could carry the error; null otherwise. */
  error: string | null;
  attempts: Generated<number>;
  /** The acceptor's claim: another claims the row only once this has passed. */
  claimed_until: Timestamp | null;
  /** The last batch_events seq written to the object's status.json. */
  status_seq: ColumnType<number, number | undefined, number>;
  /** status.json holds the batch's final state: no more rewrites. */
  status_final: Generated<boolean>;
}

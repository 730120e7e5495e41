import type { ColumnType } from "kysely";

// The column shapes every table module uses: what Kysely selects, inserts and updates for each.

/** A timestamptz column: a Date read, a Date or ISO string written. */
export type Timestamp = ColumnType<Date, Date | string, Date | string>;
/** A `created_at` column the database fills in and nobody updates. */
export type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
/** A jsonb column written as JSON text. */
export type Json<T> = ColumnType<T, string, string>;

/** What Kysely reports of a write: raw `sql` results count `numAffectedRows`, builder updates `numUpdatedRows`. */
export interface WriteResult {
  numAffectedRows?: bigint;
  numUpdatedRows?: bigint;
  numDeletedRows?: bigint;
}

/** How many rows a write touched. */
export function affectedRows(r: WriteResult): number {
  return Number(r.numAffectedRows ?? r.numUpdatedRows ?? r.numDeletedRows ?? 0);
}

/**
 * Whether a fenced write touched exactly its one row. Every fenced statement checks this: zero
 * rows means the fence (lease token, expected state) no longer matched and nothing was written.
 */
export function affectedOne(r: WriteResult): boolean {
  return affectedRows(r) === 1;
}

import { sql } from "kysely";
import type { Db } from "@barge/core";

/** Committed usage summed over one UTC day and tenant, and over one model when grouped by model. */
export interface UsageSum {
  /** The UTC day, `YYYY-MM-DD`. */
  day: string;
  tenant: string;
  /** Null unless the query grouped by model. */
  model: string | null;
  requests: number;
  failed: number;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
}

export interface UsageQuery {
  /** First day included and first day past the range, both `YYYY-MM-DD` (UTC). */
  fromDay: string;
  toDay: string;
  tenant?: string;
  byModel: boolean;
}

/** `tenant_usage` summed per day and tenant (and model), ordered by day, tenant, model. */
export async function usageSums(db: Db, q: UsageQuery): Promise<UsageSum[]> {
  const model = q.byModel ? sql<string | null>`model` : sql<string | null>`NULL::text`;
  let query = db
    .selectFrom("tenant_usage")
    .select([
      sql<string>`to_char(day, 'YYYY-MM-DD')`.as("day"),
      "tenant",
      model.as("model"),
      sql<number>`sum(requests)::int8`.as("requests"),
      sql<number>`sum(failed)::int8`.as("failed"),
      sql<number>`sum(prompt_tokens)::int8`.as("prompt_tokens"),
      sql<number>`sum(completion_tokens)::int8`.as("completion_tokens"),
      sql<number>`sum(cached_tokens)::int8`.as("cached_tokens"),
      sql<number>`sum(reasoning_tokens)::int8`.as("reasoning_tokens"),
    ])
    .where("day", ">=", q.fromDay)
    .where("day", "<", q.toDay);
  if (q.tenant !== undefined) query = query.where("tenant", "=", q.tenant);
  query = query.groupBy(["day", "tenant"]).orderBy("day").orderBy("tenant");
  if (q.byModel) query = query.groupBy("model").orderBy("model");
  return query.execute();
}

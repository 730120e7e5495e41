import { sql } from "kysely";
import type { Db } from "@barge/core";

/** One minute of a tenant's committed work. */
export interface ThroughputPoint {
  /** The minute's start, in Unix seconds. */
  t: number;
  requests_per_sec: number;
  tokens_per_sec: number;
}

/**
 * A tenant's throughput per minute over the last `minutes` minutes, from its chunks' committed
 * checkpoints: each chunk's requests and tokens are spread evenly over its run, from its first
 * claim (the timeline's `chunk_claimed`) to its completion or latest checkpoint. Why from the
 * checkpoints and not a table of samples: they already hold exactly what was committed, and a
 * chunk is at most a few thousand requests, so the spread is fine-grained enough for a chart.
 * One statement over the chunks that ran in the window, whatever the number of batches.
 */
export async function throughputSeries(db: Db, tenant: string, now: Date, minutes: number): Promise<ThroughputPoint[]> {
  const { rows } = await sql<{ t: string; requests: number; tokens: number }>`
    WITH bounds AS (
      SELECT date_trunc('minute', ${now}::timestamptz) - make_interval(mins => ${minutes - 1}) AS first_minute,
             date_trunc('minute', ${now}::timestamptz) AS last_minute
    ),
    runs AS (
      SELECT c.committed::float8 AS requests,
             (c.prompt_tokens + c.completion_tokens)::float8 AS tokens,
             coalesce(
               (SELECT min(e.created_at) FROM batch_events e
                 WHERE e.batch_id = c.batch_id AND e.kind = 'chunk_claimed' AND e.data->>'chunk' = c.idx::text),
               coalesce(c.done_at, c.updated_at) - interval '1 second'
             ) AS started,
             coalesce(c.done_at, c.updated_at) AS ended
      FROM chunks c, bounds b
      WHERE c.tenant = ${tenant} AND c.committed > 0 AND coalesce(c.done_at, c.updated_at) >= b.first_minute
    )
    SELECT extract(epoch FROM m.minute)::int8 AS t,
           coalesce(sum(r.requests * ov.seconds / greatest(extract(epoch FROM r.ended - r.started), 0.001)), 0)::float8 AS requests,
           coalesce(sum(r.tokens * ov.seconds / greatest(extract(epoch FROM r.ended - r.started), 0.001)), 0)::float8 AS tokens
    FROM bounds b
    CROSS JOIN LATERAL generate_series(b.first_minute, b.last_minute, interval '1 minute') AS m(minute)
    LEFT JOIN runs r ON r.ended > m.minute AND r.started < m.minute + interval '1 minute'
    LEFT JOIN LATERAL (
      SELECT greatest(extract(epoch FROM least(r.ended, m.minute + interval '1 minute') - greatest(r.started, m.minute)), 0)::float8 AS seconds
    ) ov ON true
    GROUP BY m.minute
    ORDER BY m.minute
  `.execute(db);
  const perSec = (n: number) => Math.round((n / 60) * 1000) / 1000;
  return rows.map((r) => ({ t: Number(r.t), requests_per_sec: perSec(r.requests), tokens_per_sec: perSec(r.tokens) }));
}

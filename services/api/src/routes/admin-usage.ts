import { Hono } from "hono";
import { z } from "zod";
import { InvalidRequest, tenantName } from "@barge/core";
import type { ApiDeps, AppEnv } from "../deps.js";
import { usageSums, type UsageSum } from "../store/usage.js";
import { readQuery } from "../validation.js";

const DAY_MS = 86_400_000;
/** The widest range one request may ask for: a year of daily buckets, leap day included. */
export const MAX_USAGE_DAYS = 366;
/** The range when no start is given, as OpenAI's daily buckets default to a week. */
const DEFAULT_USAGE_DAYS = 7;

const isoDate = z.iso.date();
const isoDateTime = z.iso.datetime({ offset: true });

/** A point in time as unix seconds (OpenAI's `start_time`/`end_time`), an ISO 8601 date or an ISO date-time; read as epoch milliseconds. */
const instant = z.string().transform((v, ctx) => {
  if (/^\d{1,11}$/.test(v)) return Number(v) * 1000;
  if (isoDate.safeParse(v).success) return Date.parse(`${v}T00:00:00Z`);
  if (isoDateTime.safeParse(v).success) return Date.parse(v);
  ctx.addIssue({ code: "custom", message: "must be unix seconds, an ISO 8601 date (2026-12-01) or date-time (2026-12-01T00:00:00Z)", input: v });
  return z.NEVER;
});

const GROUPS = ["model", "project_id"] as const;

/**
 * `GET /v1/admin/usage`'s query. `from`/`to` and OpenAI's `start_time`/`end_time` name the same
 * bounds: `from` inclusive, `to` exclusive, widened to whole UTC days since usage is kept per day.
 */
export const usageQuery = z
  .object({
    tenant: tenantName.optional(),
    from: instant.optional(),
    to: instant.optional(),
    start_time: instant.optional(),
    end_time: instant.optional(),
    group_by: z
      .string()
      .refine((v) => v.split(",").every((g) => (GROUPS as readonly string[]).includes(g)), { error: "must be 'model' or 'project_id', comma-separated" })
      .optional(),
    bucket_width: z.literal("1d", { error: "usage is kept per UTC day: the only bucket_width is '1d'" }).optional(),
  })
  .superRefine((q, ctx) => {
    for (const [ours, theirs] of [["from", "start_time"], ["to", "end_time"]] as const) {
      if (q[ours] !== undefined && q[theirs] !== undefined) {
        ctx.addIssue({ code: "custom", message: `give '${ours}' or '${theirs}', not both`, path: [theirs], input: q[theirs] });
      }
    }
  });

type UsageParams = z.output<typeof usageQuery>;

const dayStart = (ms: number) => Math.floor(ms / DAY_MS) * DAY_MS;
const dayName = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** The whole UTC days `[from, to)` a query covers, as epoch milliseconds at midnight. */
export function usageDays(q: UsageParams, now: number): { from: number; to: number } {
  const asked = q.to ?? q.end_time;
  const start = q.from ?? q.start_time;
  // The parameter a bad range is blamed on: the end, unless only the start was given.
  const param = asked === undefined ? (q.start_time !== undefined ? "start_time" : "from") : q.end_time !== undefined ? "end_time" : "to";
  // An exclusive end inside a day still takes in that day.
  const to = asked === undefined ? dayStart(now) + DAY_MS : dayStart(asked + DAY_MS - 1);
  const from = start === undefined ? to - DEFAULT_USAGE_DAYS * DAY_MS : dayStart(start);
  if (to <= from) {
    throw new InvalidRequest(`Invalid value for '${param}': the range holds no day (from ${dayName(from)} up to ${dayName(to)}, exclusive).`, param, "invalid_value");
  }
  const days = (to - from) / DAY_MS;
  if (days > MAX_USAGE_DAYS) {
    throw new InvalidRequest(`Invalid value for '${param}': the range spans ${days} days; at most ${MAX_USAGE_DAYS} per request.`, param, "invalid_value");
  }
  return { from, to };
}

/** One result of a daily bucket: OpenAI's completions usage result, plus Barge's reasoning tokens and failed requests. */
const usageResult = z.object({
  object: z.literal("organization.usage.completions.result"),
  input_tokens: z.number().int(),
  output_tokens: z.number().int(),
  input_cached_tokens: z.number().int(),
  input_audio_tokens: z.number().int(),
  output_audio_tokens: z.number().int(),
  /** Requests the model answered (output lines). */
  num_model_requests: z.number().int(),
  /** The tenant. */
  project_id: z.string(),
  user_id: z.null(),
  api_key_id: z.null(),
  model: z.string().nullable(),
  batch: z.literal(true),
  service_tier: z.null(),
  /** Barge: reasoning tokens, part of `output_tokens`. */
  output_reasoning_tokens: z.number().int(),
  /** Barge: requests counted failed (error lines: engine errors, expiry, poisoned chunks; and given-up chunks' requests). */
  failed_requests: z.number().int(),
});

/** The answer: OpenAI's usage page, one bucket per UTC day of the range, every day present. */
export const usagePage = z.object({
  object: z.literal("page"),
  data: z.array(z.object({ object: z.literal("bucket"), start_time: z.number().int(), end_time: z.number().int(), results: z.array(usageResult) })),
  has_more: z.literal(false),
  next_page: z.null(),
});

function toResult(s: UsageSum): z.output<typeof usageResult> {
  return {
    object: "organization.usage.completions.result",
    input_tokens: s.prompt_tokens,
    output_tokens: s.completion_tokens,
    input_cached_tokens: s.cached_tokens,
    input_audio_tokens: 0,
    output_audio_tokens: 0,
    num_model_requests: s.requests - s.failed,
    project_id: s.tenant,
    user_id: null,
    api_key_id: null,
    model: s.model,
    batch: true,
    service_tier: null,
    output_reasoning_tokens: s.reasoning_tokens,
    failed_requests: s.failed,
  };
}

/** `GET /v1/admin/usage`: committed usage per UTC day and tenant (a tenant is OpenAI's project), optionally per model. */
export function adminUsageRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  app.get("/", async (c) => {
    const q = readQuery(c, usageQuery);
    const { from, to } = usageDays(q, Date.now());
    const sums = await usageSums(deps.db, {
      fromDay: dayName(from),
      toDay: dayName(to),
      byModel: q.group_by?.split(",").includes("model") ?? false,
      ...(q.tenant !== undefined ? { tenant: q.tenant } : {}),
    });
    const byDay = new Map<string, UsageSum[]>();
    for (const s of sums) {
      const day = byDay.get(s.day);
      if (day) day.push(s);
      else byDay.set(s.day, [s]);
    }
    const data = [];
    for (let day = from; day < to; day += DAY_MS) {
      const results = (byDay.get(dayName(day)) ?? []).map(toResult);
      data.push({ object: "bucket" as const, start_time: day / 1000, end_time: (day + DAY_MS) / 1000, results });
    }
    return c.json({ object: "page" as const, data, has_more: false as const, next_page: null });
  });
  return app;
}

import { z } from "zod";
import { DEFAULT_MIN_REQUESTS, InvalidRequest } from "@barge/core";

// Barge's failure threshold on create: `max_failure_rate` (0 to 1) and `min_requests`, as JSON
// fields, multipart fields, or the metadata keys below for clients that send only OpenAI's fields.

const RATE_RULE = "must be a number from 0 to 1";
const MIN_RULE = "must be a whole number from 0 to 2147483647";

/** The committed failure rate above which the batch is cancelled. */
export const maxFailureRate = z.number({ error: RATE_RULE }).min(0, { error: RATE_RULE }).max(1, { error: RATE_RULE });
/** Requests that must be done before the rate counts; Postgres `integer` bounds it. */
export const minRequests = z.number({ error: MIN_RULE }).int({ error: MIN_RULE }).min(0, { error: MIN_RULE }).max(2_147_483_647, { error: MIN_RULE });

/** A number sent as text (a form field, a metadata value); unlike `z.coerce`, an empty or blank text is no 0. */
function numberText(rule: string) {
  return z.string().transform((s, ctx) => {
    const n = s.trim() === "" ? Number.NaN : Number(s);
    if (Number.isFinite(n)) return n;
    ctx.addIssue({ code: "custom", message: rule, input: s });
    return z.NEVER;
  });
}

/** The multipart form's threshold fields, to spread into its schema. */
export const formFailureThresholdFields = {
  max_failure_rate: numberText(RATE_RULE).pipe(maxFailureRate).optional(),
  min_requests: numberText(MIN_RULE).pipe(minRequests).optional(),
};

/** The metadata keys that stand for the fields. */
export const METADATA_KEYS = { max_failure_rate: "barge_max_failure_rate", min_requests: "barge_min_requests" } as const;

export interface FailureThreshold {
  max_failure_rate: number | null;
  min_requests: number | null;
}

/**
 * The batch's threshold: each field, else its metadata key (a bad value there is a 400 with
 * param `metadata`); with a rate and no floor, DEFAULT_MIN_REQUESTS.
 */
export function failureThreshold(
  given: { max_failure_rate?: number | undefined; min_requests?: number | undefined },
  meta: Record<string, string> | null | undefined,
): FailureThreshold {
  const fromMeta = (field: keyof typeof METADATA_KEYS, schema: z.ZodType<number, number>, rule: string): number | undefined => {
    const text = meta?.[METADATA_KEYS[field]];
    if (text === undefined) return undefined;
    const parsed = numberText(rule).pipe(schema).safeParse(text);
    if (!parsed.success) throw new InvalidRequest(`Invalid value for metadata key '${METADATA_KEYS[field]}': ${rule}.`, "metadata", "invalid_value");
    return parsed.data;
  };
  const rate = given.max_failure_rate ?? fromMeta("max_failure_rate", maxFailureRate, RATE_RULE);
  const min = given.min_requests ?? fromMeta("min_requests", minRequests, MIN_RULE);
  return { max_failure_rate: rate ?? null, min_requests: min ?? (rate === undefined ? null : DEFAULT_MIN_REQUESTS) };
}

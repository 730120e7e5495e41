import { z } from "zod";
import { isStorableText } from "@barge/core";

/** Keys Barge sets on every serverless batch's metadata; they win over the user's. */
export const SOURCE_METADATA_KEYS = ["source", "input_key", "input_etag"] as const;

const storable = z.string().refine(isStorableText, { error: "must not hold NUL bytes or unpaired surrogates" });

/** The user's metadata, within OpenAI's limits once Barge's own keys are added (16 in all). */
const userMetadata = z
  .string()
  .transform((s, ctx) => {
    try {
      return JSON.parse(s) as unknown;
    } catch {
      ctx.addIssue({ code: "custom", message: "must be a JSON object" });
      return z.NEVER;
    }
  })
  .pipe(
    z
      .record(storable.max(64), storable.max(512), { error: "must be a JSON object of string values" })
      .refine((m) => Object.keys(m).length <= 16 - SOURCE_METADATA_KEYS.length, {
        error: `at most ${16 - SOURCE_METADATA_KEYS.length} key-value pairs are allowed (Barge adds ${SOURCE_METADATA_KEYS.join(", ")})`,
      }),
  );

/**
 * An object's `x-amz-meta-barge-*` settings (S3 hands them lower-cased, without the prefix).
 * Unknown names are ignored, as S3 users set metadata for other tools too.
 */
export const objectSettingsSchema = z.object({
  "barge-priority": z.coerce.number().int().min(-1000).max(1000).optional(),
  "barge-completion-window": z.literal("24h", { error: "the only supported value is '24h'" }).optional(),
  "barge-webhook-url": z.url({ protocol: /^https?$/, error: "must be an http or https URL" }).max(2048).pipe(storable).optional(),
  "barge-metadata": userMetadata.optional(),
});

/** An object's settings, parsed. */
export type ObjectSettings = z.output<typeof objectSettingsSchema>;

/** The first problem with an object's settings as one line naming the header, for the batch's errors. */
export function settingsProblem(err: z.ZodError): { message: string; param: string } {
  const issue = err.issues[0]!;
  const name = String(issue.path[0] ?? "metadata");
  return { message: `x-amz-meta-${name}: ${issue.message}`, param: `x-amz-meta-${name}` };
}

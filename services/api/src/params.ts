import { z } from "zod";

// Request parameters several routes share, as OpenAI defines them.

const anchor = z.literal("created_at", { error: "the only supported value is 'created_at'" });
const seconds = z.number().int().min(3600).max(2_592_000);

/** OpenAI's `expires_after`: anchored on creation, between one hour and 30 days. */
export const expiresAfter = z.object({ anchor, seconds });

/**
 * An `expires_after`-shaped object in a multipart form, where the OpenAI SDKs send `name` as the
 * two fields `name[anchor]` and `name[seconds]`: the fields to spread into the form's schema.
 */
export function formExpiresAfterFields<N extends string>(name: N) {
  return {
    [`${name}[anchor]`]: anchor.optional(),
    [`${name}[seconds]`]: z.coerce.number().pipe(seconds).optional(),
  } as { [K in `${N}[anchor]`]: z.ZodOptional<typeof anchor> } & { [K in `${N}[seconds]`]: z.ZodOptional<z.ZodPipe<z.ZodCoercedNumber, typeof seconds>> };
}

/** The seconds of the form object `name` (see `formExpiresAfterFields`); both halves or neither, since a lone half is a client mistake. */
export function formExpirySeconds(form: Record<string, unknown>, name: string, ctx: z.RefinementCtx): number | undefined {
  const halves = [`${name}[anchor]`, `${name}[seconds]`];
  const missing = halves.find((k) => form[k] === undefined);
  if (missing && halves.some((k) => form[k] !== undefined)) {
    ctx.addIssue({ code: "custom", message: `${name} needs both anchor and seconds`, path: [missing], input: undefined });
  }
  const value = form[`${name}[seconds]`];
  return typeof value === "number" ? value : undefined;
}

/** When something created at `from` with an `expires_after` of `seconds` expires; null for never. */
export function expiryFrom(from: Date, seconds: number | null | undefined): Date | null {
  return seconds == null ? null : new Date(from.getTime() + seconds * 1000);
}

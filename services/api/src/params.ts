import { z } from "zod";
import { isStorableText, NotFound } from "@barge/core";

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

/** What a parameter that fails core's `isStorableText` is told. */
export const UNSAFE_TEXT = "must not contain U+0000 or an unpaired surrogate";

/** A string parameter that must be storable text (see core's `isStorableText`). */
export const safeText = z.string().refine(isStorableText, { error: UNSAFE_TEXT });

/**
 * The part of a Barge id after its prefix: 24 base36 characters (see core's `newId`), and for a
 * batch's output and error files one more, `o` or `e` (the finalizer's ids).
 */
const ID_TAIL = /^[0-9a-z]{24}[oe]?$/;

/**
 * `id` when it has the shape of a Barge id with `prefix`. A malformed one gets the very 404 an
 * unknown id gets: no such object can exist, and the answer must not tell the two apart.
 */
export function knownId(id: string, prefix: string, what: string, param: string): string {
  if (!id.startsWith(prefix) || !ID_TAIL.test(id.slice(prefix.length))) throw new NotFound(what, id, param);
  return id;
}

import { z } from "zod";
import { isStorableText } from "@barge/core";

/** The longest filename kept, in UTF-16 units as JavaScript counts them; OpenAI's limit too. */
export const MAX_FILENAME_LENGTH = 255;

/**
 * A client's filename as every route accepts it: Postgres text cannot hold U+0000, and an
 * unpaired surrogate would be stored as something other than what was sent.
 */
export const fileName = z
  .string()
  .min(1)
  .max(MAX_FILENAME_LENGTH)
  .refine(isStorableText, "must not contain NUL or unpaired surrogates");

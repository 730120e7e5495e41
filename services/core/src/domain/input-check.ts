import { z } from "zod";
import type { ValidationLimits, ValidationResult } from "./validate.js";

/**
 * The record of a clean upload check, kept on the file row: which object was read (its ETag and
 * size, from the very GET that was validated) and what the batch validator needs of it. The
 * validator reuses it instead of reading the object again only when the object is still that one.
 */
export const inputCheckSchema = z.object({
  etag: z.string().min(1),
  bytes: z.number().int().nonnegative(),
  endpoint: z.string().min(1),
  model: z.string().min(1),
  requests: z.number().int().positive(),
  chunkSize: z.number().int().positive(),
  chunks: z.array(
    z.object({
      idx: z.number().int().nonnegative(),
      requestStart: z.number().int().nonnegative(),
      requestCount: z.number().int().positive(),
      startOffset: z.number().int().nonnegative(),
      endOffset: z.number().int().nonnegative(),
      startLine: z.number().int().positive(),
    }),
  ),
});
export type InputCheck = z.infer<typeof inputCheckSchema>;

/** The record of a validation pass over the object `read`, or null when the pass found problems. */
export function inputCheckOf(result: ValidationResult, read: { etag: string; bytes: number }, chunkSize: number): InputCheck | null {
  if (result.errors.length > 0 || result.model === null || result.endpoint === null || result.requests === 0 || !read.etag) return null;
  return {
    etag: read.etag,
    bytes: read.bytes,
    endpoint: result.endpoint,
    model: result.model,
    requests: result.requests,
    chunkSize,
    chunks: result.chunks,
  };
}

/**
 * The validation result a stored check stands for, when it may stand in for a new pass: same
 * object (ETag and size), same endpoint, same chunk size, and within today's limits. Otherwise
 * null, and the input is read and validated again (which words any errors on their lines).
 */
export function reuseInputCheck(
  stored: unknown,
  object: { etag: string; bytes: number },
  endpoint: string,
  limits: ValidationLimits,
): ValidationResult | null {
  const parsed = inputCheckSchema.safeParse(stored);
  if (!parsed.success) return null;
  const c = parsed.data;
  const same = c.etag === object.etag && c.bytes === object.bytes;
  if (!same || c.endpoint !== endpoint || c.chunkSize !== limits.chunkSize) return null;
  if (c.requests > limits.maxRequests || c.bytes > limits.maxBytes) return null;
  return { requests: c.requests, bytes: c.bytes, endpoint: c.endpoint, model: c.model, chunks: c.chunks, errors: [] };
}

import { badRequest, contextLengthExceeded } from "./errors.js";
import type { PromptInput } from "./tokens.js";

// Parsing and checking of the request fields the endpoints share. Each throws the ApiError
// (400) vLLM would answer with, so a bad field never reaches generation.

/** The positive integer in `field`, or null when absent. */
export function maxTokensOf(body: Record<string, unknown>, field: string): number | null {
  const value = body[field];
  if (value === undefined || value === null) return null;
  if (typeof value !== "number" || !Number.isInteger(value)) throw badRequest(`${field} must be an integer`, field);
  if (value < 1) throw badRequest(`${field} must be at least 1, got ${value}.`, field);
  return value;
}

/** The number of choices asked for (`n`, default 1). */
export function choiceCount(body: Record<string, unknown>): number {
  const n = body.n ?? 1;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) throw badRequest("n must be an integer of at least 1", "n");
  return n;
}

/** Rejects a request whose prompt plus max tokens does not fit the context window. */
export function checkContext(promptTokens: number, maxTokens: number | null, maxModelLen: number): void {
  // Without max tokens at least one token must still fit, as vLLM requires.
  const tooLong = maxTokens === null ? promptTokens >= maxModelLen : promptTokens + maxTokens > maxModelLen;
  if (tooLong) throw contextLengthExceeded(maxModelLen, promptTokens, maxTokens);
}

/** Normalizes a prompt/input field (string, string[], token array, token arrays) to a non-empty list of non-empty items. */
export function promptList(value: unknown, field: string): PromptInput[] {
  const items: unknown[] = typeof value === "string" ? [value] : Array.isArray(value) && typeof value[0] === "number" ? [value] : Array.isArray(value) ? value : [];
  if (items.length === 0) throw badRequest(`Field required: ${field} (a non-empty string or array)`, field);
  for (const item of items) {
    const ok =
      (typeof item === "string" && item !== "") ||
      (Array.isArray(item) && item.length > 0 && item.every((t) => typeof t === "number" && Number.isInteger(t)));
    if (!ok) throw badRequest(`${field} must be a non-empty string, an array of strings, or token id arrays`, field);
  }
  return items as PromptInput[];
}

/** The text a prompt item is hashed by, for seeding. */
export function canonicalInput(input: PromptInput): string {
  // A distinct prefix keeps the token array [1,2] apart from the text "1,2".
  return typeof input === "string" ? input : `\u0002${input.join(",")}`;
}

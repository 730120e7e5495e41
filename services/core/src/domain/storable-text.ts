// Postgres text cannot hold U+0000, and a surrogate without its pair cannot be encoded as UTF-8.
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Whether `s` reaches a Postgres text column unchanged: no U+0000 and no unpaired surrogate. */
export function isStorableText(s: string): boolean {
  return !UNSTORABLE.test(s);
}

/** The longest text `storableText` keeps by default. */
export const MAX_STORABLE_CHARS = 8192;

/**
 * Text from outside (engine error messages, exception text, custom ids of old batches) made fit
 * for a Postgres `text` column: Postgres refuses U+0000 and a lone surrogate cannot be encoded
 * as UTF-8, so the first is dropped, the second becomes U+FFFD, and the result is capped at
 * `max` UTF-16 units without splitting a surrogate pair.
 */
export function storableText(s: string, max: number = MAX_STORABLE_CHARS): string {
  const clean = wellFormed(s.replaceAll("\u0000", ""));
  if (clean.length <= max) return clean;
  // Cutting between the halves of a pair would leave a lone surrogate again.
  const cut = isHighSurrogate(clean.charCodeAt(max - 1)) ? max - 1 : max;
  return clean.slice(0, cut);
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

// Node 20 has String.prototype.toWellFormed; the project's ES2023 lib does not declare it yet.
function wellFormed(s: string): string {
  return (s as string & { toWellFormed(): string }).toWellFormed();
}

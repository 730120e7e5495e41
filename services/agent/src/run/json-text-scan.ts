import { isStorableText } from "@barge/core";

/**
 * Walks a JSON text's structure as a loop (no recursion), skipping strings; `onString` sees each
 * string with its quotes and nesting depth, and returning a value from it ends the walk.
 */
function walk<T>(text: string, onString: (start: number, end: number, depth: number) => T | undefined): T | undefined {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const start = i;
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
      if (i < text.length) {
        const found = onString(start, i + 1, depth);
        if (found !== undefined) return found;
      }
    } else if (c === 0x5b || c === 0x7b) depth++;
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return undefined;
}

const stringValue = /\s*:\s*("(?:[^"\\]|\\.)*")/y;

/**
 * The top-level `custom_id` of a request line read only in part (the start of a line too long
 * to hold), or undefined when that part does not hold it or it could not be stored as text.
 */
export function customIdIn(prefix: string): string | undefined {
  return walk(prefix, (start, end, depth) => {
    if (depth !== 1 || prefix.slice(start, end) !== '"custom_id"') return undefined;
    stringValue.lastIndex = end;
    const m = stringValue.exec(prefix);
    if (!m) return undefined;
    try {
      const id = JSON.parse(m[1]!) as string;
      return isStorableText(id) ? id : undefined;
    } catch {
      return undefined;
    }
  });
}

/** Seconds as "42 s", "3 min 5 s", "2 h 10 min". */
export function duration(s: number): string {
  const n = Math.max(0, Math.round(s));
  if (n < 60) return `${n} s`;
  if (n < 3600) return `${Math.floor(n / 60)} min ${n % 60} s`;
  return `${Math.floor(n / 3600)} h ${Math.floor((n % 3600) / 60)} min`;
}

/** A batch's ETA from its `estimated_completion` (Unix seconds), or a dash when unknown. */
export function eta(at: number | null, now = Date.now()): string {
  return at === null ? "–" : duration(at - now / 1000);
}

export const num = (n: number | null | undefined, digits = 0): string => (n === null || n === undefined ? "–" : n.toLocaleString("en", { maximumFractionDigits: digits }));

export const time = (unix: number): string => new Date(unix * 1000).toLocaleString("en-GB", { hour12: false });

/** True for a plain JSON object (not null, not an array): the only shape a request body may have. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

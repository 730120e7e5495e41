import { pino, type Logger } from "pino";

export type { Logger };

/** Creates the structured JSON logger every process writes to stderr. */
export function createLogger(name: string, level: string = process.env.LOG_LEVEL ?? "info"): Logger {
  return pino({ name, level }, pino.destination(2));
}

import { pino, type DestinationStream, type Logger } from "pino";

export type { DestinationStream, Logger };

/** Creates the structured JSON logger every process writes to stderr (or to `destination`, where a test reads its lines). */
export function createLogger(name: string, level: string = process.env.LOG_LEVEL ?? "info", destination: DestinationStream = pino.destination(2)): Logger {
  return pino({ name, level }, destination);
}

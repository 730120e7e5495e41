import { BargeError } from "@barge/core";

/** The 408 for a request body that stopped arriving. */
export function bodyIdle(idleMs: number): BargeError {
  return new BargeError(408, "invalid_request_error", `No bytes of the request body arrived for ${idleMs / 1000} s; the request was aborted.`, "request_timeout");
}

/** The clock of one request body's idle timeout. */
export interface BodyIdleWatch {
  /** Bytes arrived: the clock starts over. */
  touch(): void;
  /** The body ended or the request failed otherwise: the clock stops for good. */
  stop(): void;
}

/**
 * Starts the idle clock of a request body (UPLOAD_IDLE_TIMEOUT_SECONDS): `onIdle` gets the 408
 * once `idleMs` pass without a `touch`. Why `waitingOnBarge`: a body paused by backpressure (S3
 * slower than the client) waits on Barge, not on the client, so then the clock starts over instead.
 */
export function watchBodyIdle(idleMs: number, onIdle: (err: BargeError) => void, waitingOnBarge: () => boolean = () => false): BodyIdleWatch {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const touch = () => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (waitingOnBarge()) touch();
      else {
        stopped = true;
        onIdle(bodyIdle(idleMs));
      }
    }, idleMs);
  };
  touch();
  return {
    touch,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

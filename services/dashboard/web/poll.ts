import { useEffect, useRef, useState } from "preact/hooks";

/** What a poll holds: the last answer, the last error, and a way to refresh now. */
export interface Polled<T> {
  data: T | undefined;
  error: string | undefined;
  refresh: () => void;
}

/**
 * Calls `load` now and every `everyMs` while the component is shown (and again when `deps`
 * change); one call at a time, so a slow API is never asked twice at once.
 */
export function usePoll<T>(load: () => Promise<T>, everyMs: number, deps: unknown[]): Polled<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const kick = useRef<() => void>(() => {});
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let busy = false;
    const tick = async () => {
      if (busy) return;
      busy = true;
      clearTimeout(timer);
      try {
        const d = await load();
        if (live) (setData(d), setError(undefined));
      } catch (err) {
        if (live) setError(err instanceof Error ? err.message : String(err));
      } finally {
        busy = false;
        if (live) timer = setTimeout(tick, everyMs);
      }
    };
    kick.current = () => void tick();
    void tick();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, deps);
  return { data, error, refresh: () => kick.current() };
}

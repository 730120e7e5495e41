/** Runs work over items with bounded parallelism; the first failure cancels the rest and is rethrown. */
export async function runPool<T>(items: T[], limit: number, work: (item: T, signal: AbortSignal) => Promise<void>): Promise<void> {
  const ctl = new AbortController();
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item, ctl.signal);
      } catch (error) {
        if (!failure) {
          failure = { error };
          ctl.abort();
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}

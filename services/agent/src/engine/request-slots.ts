import type { ConcurrencyController } from "./concurrency.js";

/**
 * The agent's in-flight engine requests, counted across every chunk run it holds, against one
 * limit: two overlapping runs share the engine, so they must share the bound too. Waiters are
 * woken in subscription order, so an older run gets a freed slot before a newer one.
 */
export class RequestSlots {
  private used = 0;
  private readonly listeners = new Set<() => void>();
  private readonly unsubscribe: (() => void) | undefined;

  /** `limit` follows the controller when there is one, else stays `fixed`. */
  constructor(
    private readonly controller: ConcurrencyController | undefined,
    private readonly fixed: number,
  ) {
    // A raised limit must wake a dispatcher parked on the old one.
    this.unsubscribe = controller?.onChange(() => this.notify());
  }

  /** Stops following the controller. */
  close(): void {
    this.unsubscribe?.();
    this.listeners.clear();
  }

  get limit(): number {
    return this.controller?.limit ?? this.fixed;
  }

  get inflight(): number {
    return this.used;
  }

  /** Takes a slot when one is free. */
  tryAcquire(): boolean {
    if (this.used >= this.limit) return false;
    this.used++;
    return true;
  }

  /** Gives a slot back and wakes the waiters. */
  release(): void {
    this.used--;
    this.notify();
  }

  /** Calls `fn` whenever a slot may have come free; returns the unsubscribe. */
  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private notify(): void {
    for (const fn of this.listeners) fn();
  }
}

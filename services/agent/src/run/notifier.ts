/**
 * A level-less wake-up: waiters park until the next `notify()`. The runner's dispatcher re-checks
 * its own conditions after each wake, so a lost or spurious wake-up only costs one extra check.
 */
export class Notifier {
  private waiters: (() => void)[] = [];

  /** Resolves at the next `notify()`. */
  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Wakes every current waiter. */
  notify(): void {
    const woken = this.waiters;
    this.waiters = [];
    for (const w of woken) w();
  }
}

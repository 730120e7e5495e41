/**
 * Holds results that finished out of order until their predecessors arrive, then releases them
 * strictly in input order. Positions are 0-based and dense. The window caps how far ahead of the
 * oldest unreleased position a result may be, which is what bounds the buffer's memory: the
 * runner asks `canAccept` before it dispatches a request.
 */
export class ReorderBuffer<T> {
  private readonly held = new Map<number, T>();
  private nextPos: number;

  constructor(
    readonly window: number,
    start = 0,
  ) {
    if (!Number.isInteger(window) || window < 1) throw new RangeError(`window must be a positive integer, got ${window}`);
    this.nextPos = start;
  }

  /** The oldest position not yet released: the one everything else waits for. */
  get next(): number {
    return this.nextPos;
  }

  /** Results held back behind a gap. */
  get size(): number {
    return this.held.size;
  }

  /** Whether a request at `pos` may be dispatched without overrunning the window. */
  canAccept(pos: number): boolean {
    return pos >= this.nextPos && pos < this.nextPos + this.window;
  }

  /** Stores the result for `pos` and returns every result now releasable, in order. */
  put(pos: number, value: T): T[] {
    if (!this.canAccept(pos)) throw new RangeError(`position ${pos} is outside the window [${this.nextPos}, ${this.nextPos + this.window})`);
    if (this.held.has(pos)) throw new RangeError(`position ${pos} was already delivered`);
    this.held.set(pos, value);
    const out: T[] = [];
    while (this.held.has(this.nextPos)) {
      out.push(this.held.get(this.nextPos) as T);
      this.held.delete(this.nextPos);
      this.nextPos++;
    }
    return out;
  }
}

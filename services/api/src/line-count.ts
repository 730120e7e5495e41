/** ASCII whitespace, the bytes a blank JSONL line may hold (JSON's own whitespace plus \v and \f). */
function isSpace(byte: number): boolean {
  return byte === 0x20 || (byte >= 0x09 && byte <= 0x0d);
}

/**
 * Counts the non-blank lines of a byte stream fed in pieces, as an upload streams through:
 * what the one-shot create reports as `total_requests` before validation has read the file.
 * Each line costs a native newline search plus a look at its first bytes, so a file is counted in
 * one pass without copying it.
 */
export class LineCounter {
  /** Non-blank lines ended so far. */
  private ended = 0;
  /** Whether the line being read holds a byte other than whitespace. */
  private filled = false;

  /** Counts the lines `piece` ends, carrying the unfinished one into the next piece. */
  add(piece: Buffer): void {
    let pos = 0;
    for (;;) {
      const nl = piece.indexOf(10, pos);
      const end = nl === -1 ? piece.length : nl;
      for (let i = pos; !this.filled && i < end; i++) if (!isSpace(piece[i]!)) this.filled = true;
      if (nl === -1) return;
      if (this.filled) this.ended++;
      this.filled = false;
      pos = nl + 1;
    }
  }

  /** The non-blank lines, the last one counted whether or not it ends with a newline. */
  get lines(): number {
    return this.ended + (this.filled ? 1 : 0);
  }
}

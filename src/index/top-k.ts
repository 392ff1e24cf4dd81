/**
 * A bounded min-heap over (score, row) kept in typed arrays: the k best of a stream of
 * scores in O(n log k) with no allocation per candidate. Ties go to the lower row, so a
 * search is deterministic whatever order the rows are scanned in.
 */
const worse = (s1: number, r1: number, s2: number, r2: number): boolean => s1 < s2 || (s1 === s2 && r1 > r2);

export class TopK {
  private readonly scores: Float32Array;
  private readonly rows: Int32Array;
  private n = 0;

  constructor(readonly k: number) {
    this.scores = new Float32Array(k);
    this.rows = new Int32Array(k);
  }

  /** The score a candidate must reach to enter (−∞ until the heap is full). */
  get threshold(): number {
    return this.n < this.k ? -Infinity : this.scores[0]!;
  }

  push(value: number, row: number): void {
    if (this.k === 0 || Number.isNaN(value)) return;
    // compare at the precision we store, or a double and its float32 copy never tie
    const score = Math.fround(value);
    if (this.n < this.k) {
      let i = this.n++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!worse(score, row, this.scores[parent]!, this.rows[parent]!)) break;
        this.scores[i] = this.scores[parent]!;
        this.rows[i] = this.rows[parent]!;
        i = parent;
      }
      this.scores[i] = score;
      this.rows[i] = row;
    } else if (worse(this.scores[0]!, this.rows[0]!, score, row)) {
      this.replaceRoot(score, row);
    }
  }

  /** Best first. */
  sorted(): { row: number; score: number }[] {
    const out = Array.from({ length: this.n }, (_, i) => ({ row: this.rows[i]!, score: this.scores[i]! }));
    return out.sort((a, b) => b.score - a.score || a.row - b.row);
  }

  private replaceRoot(score: number, row: number): void {
    let i = 0;
    const n = this.n;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child =
        right < n && worse(this.scores[right]!, this.rows[right]!, this.scores[left]!, this.rows[left]!) ? right : left;
      if (!worse(this.scores[child]!, this.rows[child]!, score, row)) break;
      this.scores[i] = this.scores[child]!;
      this.rows[i] = this.rows[child]!;
      i = child;
    }
    this.scores[i] = score;
    this.rows[i] = row;
  }
}

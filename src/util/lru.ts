/**
 * A least-recently-used map bounded by entry count and, optionally, by a size measure
 * (bytes of cached tensors). Map iteration order is insertion order, so re-inserting on
 * access keeps the oldest entry first.
 */
export class LruCache<K, V> {
  private readonly map = new Map<K, V>();
  private total = 0;
  hits = 0;
  misses = 0;

  constructor(
    readonly maxEntries: number,
    private readonly sizeOf: (v: V) => number = () => 0,
    readonly maxSize = Infinity,
  ) {}

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  set(key: K, value: V): void {
    const old = this.map.get(key);
    if (old !== undefined) {
      this.total -= this.sizeOf(old);
      this.map.delete(key);
    }
    this.map.set(key, value);
    this.total += this.sizeOf(value);
    while (this.map.size > this.maxEntries || (this.total > this.maxSize && this.map.size > 1)) {
      const [k, v] = this.map.entries().next().value as [K, V];
      this.map.delete(k);
      this.total -= this.sizeOf(v);
    }
  }

  clear(): void {
    this.map.clear();
    this.total = 0;
  }
}

/** The server's memory of stage 2's stored rows: read once, dropped when the item changes, everything else passed through. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StoredItem, VectorStore } from '../../src/index/vector-store.js';
import { withRowCache } from '../../src/serve/row-cache.js';

/** a store of three items whose rows count their reads; `touch` changes an item as a re-index would */
function countingStore() {
  const reads: string[] = [];
  const mtimes: Record<string, number> = { a: 1, b: 1, c: 1 };
  const store = {
    info: { items: 'images', modelId: 'm', modelSpec: 'm', dim: 2, root: '/photos' },
    location: 'memory',
    count: async () => 3,
    get: async (ids: string[]) => ids.map((id): StoredItem | undefined => (id in mtimes ? { id, vector: new Float32Array(2), metadata: { bytes: 10, mtimeMs: mtimes[id]! } } : undefined)),
    metadataOf: async (ids: string[]) => ids.map((id) => (id in mtimes ? { bytes: 10, mtimeMs: mtimes[id]! } : undefined)),
    regions: async (ids: string[]) => {
      reads.push(...ids);
      return ids.map((id) => (id in mtimes ? Float32Array.of(mtimes[id]!, id.charCodeAt(0)) : undefined));
    },
  } as unknown as VectorStore;
  return { store, reads, touch: (id: string) => mtimes[id]!++ };
}

describe('stage-2 row cache', () => {
  it('reads a row from the index once, then from memory', async () => {
    const { store, reads } = countingStore();
    const stats = { hits: 0, misses: 0 };
    const cached = withRowCache(store, 1 << 20, stats);
    assert.deepEqual(await cached.regions(['a', 'b']), [Float32Array.of(1, 97), Float32Array.of(1, 98)]);
    assert.deepEqual(await cached.regions(['b', 'c', 'a']), [Float32Array.of(1, 98), Float32Array.of(1, 99), Float32Array.of(1, 97)]);
    assert.deepEqual(reads, ['a', 'b', 'c'], 'only c was read the second time');
    assert.deepEqual(stats, { hits: 2, misses: 3 });
    assert.equal(await cached.count(), 3, 'other calls go to the store');
    assert.equal(cached.info.root, '/photos');
  });

  for (const read of ['get', 'metadataOf'] as const) {
    it(`drops a row when its item changed, seen through ${read}() (the engine reads candidates' metadata before their rows)`, async () => {
      const { store, reads, touch } = countingStore();
      const cached = withRowCache(store, 1 << 20);
      await cached[read](['a']);
      await cached.regions(['a']);
      await cached[read](['a']);
      await cached.regions(['a']);
      assert.deepEqual(reads, ['a']);
      touch('a');
      await cached[read](['a']);
      assert.deepEqual(await cached.regions(['a']), [Float32Array.of(2, 97)], 'the new row');
      assert.deepEqual(reads, ['a', 'a']);
      assert.deepEqual(await cached.regions(['zzz']), [undefined], 'a missing row is not cached');
    });
  }

  it('stays within its bytes, and 0 bytes is the store itself', async () => {
    const { store, reads } = countingStore();
    const small = withRowCache(store, 16); // two rows of 8 bytes
    await small.regions(['a', 'b', 'c']);
    await small.regions(['a']);
    assert.deepEqual(reads, ['a', 'b', 'c', 'a'], 'a was evicted');
    assert.equal(withRowCache(store, 0), store);
  });
});

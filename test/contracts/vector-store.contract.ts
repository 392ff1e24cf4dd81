/** The contract every VectorStore passes (exact now; ANN and PostgreSQL stores run it too). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { VectorStore } from '../../src/index/vector-store.js';

export function randomUnit(dim: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const v = new Float32Array(dim);
  for (let i = 0; i < dim; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    v[i] = ((s >>> 0) / 4294967296) * 2 - 1;
  }
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

function bruteForce(ids: string[], vectors: Float32Array[], q: Float32Array, k: number) {
  return ids
    .map((id, i) => ({ id, score: vectors[i]!.reduce((s, x, j) => s + x * q[j]!, 0) }))
    .sort((a, b) => b.score - a.score)
    .slice(0, k);
}

export function runVectorStoreContract(name: string, make: (dim: number) => VectorStore): void {
  describe(`VectorStore contract: ${name}`, () => {
    const dim = 24;
    const ids = Array.from({ length: 300 }, (_, i) => `item-${i}`);
    const vectors = ids.map((_, i) => randomUnit(dim, i + 1));

    it('returns the same top k as brute force, best first', async () => {
      const store = make(dim);
      store.upsert(ids, vectors);
      assert.equal(store.size, 300);
      const queries = [randomUnit(dim, 1001), randomUnit(dim, 1002), vectors[17]!];
      const results = await store.search(queries, 10);
      queries.forEach((q, i) => {
        const expected = bruteForce(ids, vectors, q, 10);
        assert.deepEqual(results[i]!.map((h) => h.id), expected.map((h) => h.id));
        results[i]!.forEach((h, r) => assert.ok(Math.abs(h.score - expected[r]!.score) < 1e-5));
      });
      assert.equal(results[2]![0]!.id, 'item-17', 'a stored vector finds itself first');
    });

    it('upsert replaces, remove deletes, get returns the stored vector', async () => {
      const store = make(dim);
      store.upsert(ids.slice(0, 5), vectors.slice(0, 5));
      store.upsert(['item-0'], [vectors[9]!]);
      assert.equal(store.size, 5);
      assert.ok(Math.abs((await store.search([vectors[9]!], 1))[0]![0]!.score - 1) < 1e-5);
      assert.equal((await store.search([vectors[9]!], 1))[0]![0]!.id, 'item-0');
      assert.equal(store.remove(['item-1', 'nope']), 1);
      assert.equal(store.size, 4);
      assert.equal(store.has('item-1'), false);
      assert.deepEqual([...store.ids()].sort(), ['item-0', 'item-2', 'item-3', 'item-4']);
      const got = store.get('item-3')!;
      assert.ok(got.every((x, j) => Math.abs(x - vectors[3]![j]!) < 1e-6));
      assert.equal((await store.search([vectors[3]!], 1))[0]![0]!.id, 'item-3', 'rows moved by a removal stay findable');
    });

    it('caps k at the store size, applies filters, and rejects bad input by name', async () => {
      const store = make(dim);
      store.upsert(ids.slice(0, 4), vectors.slice(0, 4));
      assert.equal((await store.search([vectors[0]!], 50))[0]!.length, 4);
      assert.deepEqual((await store.search([vectors[0]!], 0))[0], []);
      const filtered = (await store.search([vectors[0]!], 10, (id) => id !== 'item-0'))[0]!;
      assert.equal(filtered.length, 3);
      assert.ok(filtered.every((h) => h.id !== 'item-0'));
      await assert.rejects(store.search([new Float32Array(dim + 1)], 3), /dimension/);
      assert.throws(() => store.upsert(['bad'], [new Float32Array(dim).fill(NaN)]), /bad/);
      assert.deepEqual((await make(dim).search([vectors[0]!], 5)), [[]], 'an empty store returns empty lists');
    });
  });
}

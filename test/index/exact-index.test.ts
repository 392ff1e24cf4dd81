import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExactIndex } from '../../src/index/exact-index.js';
import { TopK } from '../../src/index/top-k.js';
import { randomUnit } from '../contracts/vector-store.contract.js';

describe('TopK', () => {
  it('keeps the k best of a stream, as a full sort would, ties to the lower row', () => {
    let s = 7;
    const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (const k of [1, 3, 10, 64]) {
      const scores = Array.from({ length: 500 }, () => Math.round(rand() * 50) / 50); // many ties
      const heap = new TopK(k);
      scores.forEach((v, row) => heap.push(v, row));
      const expected = scores
        .map((score, row) => ({ row, score: Math.fround(score) }))
        .sort((a, b) => b.score - a.score || a.row - b.row)
        .slice(0, k);
      assert.deepEqual(heap.sorted(), expected);
    }
  });

  it('ignores NaN and handles k = 0', () => {
    const heap = new TopK(2);
    heap.push(NaN, 0);
    heap.push(0.5, 1);
    assert.deepEqual(heap.sorted(), [{ row: 1, score: 0.5 }]);
    const empty = new TopK(0);
    empty.push(1, 0);
    assert.deepEqual(empty.sorted(), []);
  });
});

describe('ExactIndex', () => {
  it('batched search equals one query at a time across block boundaries, on both scans', async () => {
    const dim = 16;
    const index = new ExactIndex(dim);
    const n = 1000; // several 256-row blocks
    index.upsert(Array.from({ length: n }, (_, i) => `v${i}`), Array.from({ length: n }, (_, i) => randomUnit(dim, i + 5)));
    const queries = Array.from({ length: 7 }, (_, i) => randomUnit(dim, 9000 + i));
    const batched = await index.search(queries, 15);
    for (const [i, q] of queries.entries()) assert.deepEqual((await index.search([q], 15))[0], batched[i]);
    index.backend = 'ort';
    const viaOrt = await index.search(queries, 15);
    viaOrt.forEach((hits, i) => {
      assert.deepEqual(hits.map((h) => h.id), batched[i]!.map((h) => h.id));
      hits.forEach((h, j) => assert.ok(Math.abs(h.score - batched[i]![j]!.score) < 1e-5));
    });
  });

  it('normalises stored vectors and queries so scores are cosines', async () => {
    const index = Object.assign(new ExactIndex(2), { backend: 'js' as const });
    index.upsert(['a', 'b'], [Float32Array.from([3, 0]), Float32Array.from([0, 5])]);
    const [hits] = await index.search([Float32Array.from([10, 10])], 2);
    assert.ok(Math.abs(hits![0]!.score - Math.SQRT1_2) < 1e-6);
    assert.deepEqual(hits!.map((h) => h.id), ['a', 'b'], 'equal scores keep insertion order');
  });

  it('rejects a non-positive dimension and duplicate ids in saved rows', () => {
    assert.throws(() => new ExactIndex(0), /dim/);
    assert.throws(() => ExactIndex.fromRows(2, ['x', 'x'], new Float32Array(4)), /duplicates/);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExactIndex } from '../../src/index/exact-index.js';
import { OrtTopK } from '../../src/index/ort-top-k.js';
import { randomUnit } from '../contracts/vector-store.contract.js';

describe('OrtTopK (a generated MatMul+TopK graph on onnxruntime-node)', () => {
  it('returns the same top k as the exact index', async () => {
    const dim = 32;
    const n = 700;
    const index = new ExactIndex(dim);
    const rows = Array.from({ length: n }, (_, i) => randomUnit(dim, i + 3));
    index.upsert(rows.map((_, i) => String(i)), rows);
    const queries = [randomUnit(dim, 5000), randomUnit(dim, 5001), rows[42]!];
    const flat = new Float32Array(queries.length * dim);
    queries.forEach((q, i) => flat.set(q, i * dim));
    const ort = await OrtTopK.create({ threads: 1 });
    const got = await ort.search(flat, queries.length, index.matrix(), n, dim, 8);
    const want = await Object.assign(index, { backend: 'js' as const }).search(queries, 8);
    got.forEach((g, i) => {
      assert.deepEqual(g.rows.map(String), want[i]!.map((h) => h.id));
      g.scores.forEach((s, j) => assert.ok(Math.abs(s - want[i]![j]!.score) < 1e-5));
    });
    assert.equal(got[2]!.rows[0], 42);
    await ort.dispose();
  });
});

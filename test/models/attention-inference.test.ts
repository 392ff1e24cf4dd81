import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mat, normalizeRows } from '../../src/models/mat.js';
import { attentionScores, attentionScoresOnly, type TokenRows } from '../../src/models/starter/attention.js';
import { crossScores, REGIONS, StackBuffers, type CrossHead } from '../../src/models/starter/cross-scoring.js';
import { seeded } from '../../src/train/dual-encoder.js';

/** Random unit tokens for captions of the given lengths and unit regions for nImg images. */
function inputs(rand: () => number, lengths: number[], nImg: number, m: number, d: number): { tok: TokenRows; R: ReturnType<typeof mat> } {
  const total = lengths.reduce((a, b) => a + b, 0);
  const owner = Int32Array.from(lengths.flatMap((n, c) => Array<number>(n).fill(c)));
  const T = normalizeRows(mat(total, d, Float32Array.from({ length: total * d }, () => rand() * 2 - 1))).y;
  const R = normalizeRows(mat(nImg * m, d, Float32Array.from({ length: nImg * m * d }, () => rand() * 2 - 1))).y;
  return { tok: { T, owner, counts: Int32Array.from(lengths) }, R };
}

describe('attention scores for search (no gradient caches)', () => {
  // small products run in JavaScript, large ones as an onnxruntime Gemm: both paths
  const cases = [
    { lengths: [2, 1, 3], nImg: 4, m: 3, d: 5, lambda: 4 },
    { lengths: [7], nImg: 64, m: REGIONS, d: 256, lambda: 9 },
    { lengths: [5, 9, 1, 12], nImg: 37, m: REGIONS, d: 64, lambda: 9 },
  ];
  for (const [n, c] of cases.entries()) {
    it(`equals the training forward to the bit (case ${n}: ${c.lengths.length} captions × ${c.nImg} images, d ${c.d})`, async () => {
      const rand = seeded(100 + n);
      for (let trial = 0; trial < 3; trial++) {
        const { tok, R } = inputs(rand, c.lengths, c.nImg, c.m, c.d);
        const { S: train } = await attentionScores(tok, R, c.m, c.lambda);
        const search = await attentionScoresOnly(tok, R, c.m, c.lambda);
        assert.equal(search.rows, train.rows);
        assert.equal(search.cols, train.cols);
        assert.deepEqual(Array.from(search.data), Array.from(train.data));
      }
    });
  }

  it('crossScores with reused stacking buffers scores as without, overlapping calls included', async () => {
    const rand = seeded(7);
    const dims = [16, 8];
    const heads: CrossHead[] = dims.map((dim, h) => ({
      config: { vocabSize: 20 + h, dim, lambda: 9 },
      params: new Map([['tokens', Float32Array.from({ length: (20 + h) * dim }, () => rand() * 2 - 1)]]),
    }));
    const size = REGIONS * dims.reduce((a, b) => a + b, 0);
    const images = Array.from({ length: 30 }, () => Float32Array.from({ length: size }, () => rand() * 2 - 1));
    const captions = [Int32Array.from([1, 5, 20]), Int32Array.from([3])];
    const want = await crossScores(heads, captions, images);
    const buffers = new StackBuffers();
    const got = await Promise.all([0, 1, 2, 3].map((k) => crossScores(heads, captions, k % 2 ? images : images.slice(0, 17), buffers)));
    assert.deepEqual(Array.from(got[1]!.data), Array.from(want.data));
    assert.deepEqual(Array.from(got[3]!.data), Array.from(want.data));
    const again = await crossScores(heads, captions, images, buffers);
    assert.deepEqual(Array.from(again.data), Array.from(want.data));
    const fewer = await crossScores(heads, captions, images.slice(0, 17));
    assert.deepEqual(Array.from(got[0]!.data), Array.from(fewer.data));
  });
});

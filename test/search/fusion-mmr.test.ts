import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fuse, normalise, ranksOf } from '../../src/search/fusion.js';
import { mmr } from '../../src/search/mmr.js';
import { parseAlphaList } from '../../src/search/options.js';

describe('fusion', () => {
  const s1 = [0.9, 0.8, 0.7, 0.6];
  const s2 = [1, 4, 3, 2];
  it('replace orders by stage 2 alone', () => {
    assert.deepEqual(fuse(s1, s2, 'replace'), s2);
  });
  it('rrf sums reciprocal ranks (k = 60)', () => {
    const f = fuse(s1, s2, 'rrf');
    assert.ok(Math.abs(f[0]! - (1 / 61 + 1 / 64)) < 1e-12);
    assert.ok(Math.abs(f[1]! - (1 / 62 + 1 / 61)) < 1e-12);
    assert.deepEqual(ranksOf(f), [2, 1, 3, 4]); // 1/61+1/64 = .03202 edges out 1/62+1/63 = .03200
  });
  it('weighted: α = 1 is stage 2, α = 0 is stage 1, in rank order', () => {
    assert.deepEqual(ranksOf(fuse(s1, s2, 'weighted', { alpha: 1 })), ranksOf(s2));
    assert.deepEqual(ranksOf(fuse(s1, s2, 'weighted', { alpha: 0 })), ranksOf(s1));
  });
  it('robust normalisation is not squashed by one outlier; min-max is', () => {
    const scores = [1, 2, 3, 4, 1000];
    const robust = normalise(scores, 'robust');
    const minmax = normalise(scores, 'minmax');
    assert.ok(robust[3]! - robust[0]! > 1, 'robust keeps the spread of the ordinary scores');
    assert.ok(minmax[3]! - minmax[0]! < 0.01, 'min-max collapses them');
    assert.deepEqual(normalise([5, 5, 5], 'robust'), [0, 0, 0]);
  });
  it('ties rank by position', () => {
    assert.deepEqual(ranksOf([1, 1, 2]), [2, 3, 1]);
  });
});

describe('MMR', () => {
  const v = (...x: number[]) => Float32Array.from(x);
  const vectors = [v(1, 0), v(1, 0), v(0, 1)]; // 0 and 1 are duplicates
  it('λ = 1 keeps the relevance order', () => {
    assert.deepEqual(mmr([0.9, 0.8, 0.7], vectors, 1, 3), [0, 1, 2]);
  });
  it('lower λ moves a near-duplicate below a different item', () => {
    assert.deepEqual(mmr([0.9, 0.8, 0.7], vectors, 0.5, 3), [0, 2, 1]);
  });
  it('returns at most k items', () => {
    assert.equal(mmr([0.9, 0.8, 0.7], vectors, 0.5, 2).length, 2);
  });
});

describe('α lists from the command line', () => {
  it('parses, keeps order, drops repeats, and refuses empty or out-of-range entries naming the flag', () => {
    assert.deepEqual(parseAlphaList('--alpha', '0.3, 0.5,0.3,1'), [0.3, 0.5, 1]);
    assert.throws(() => parseAlphaList('--alpha', '0.3,'), /--alpha.*"0\.3," has an empty entry/);
    assert.throws(() => parseAlphaList('--alphas', '0.2,1.5'), /--alphas/);
    assert.throws(() => parseAlphaList('--alpha', 'x'), /--alpha/);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pairScore } from '../oracles/cross-attention.js';

describe('cross-attention pair score', () => {
  it('a token attends to the region that matches it', () => {
    const t = Float32Array.from([1, 0, 0, 0]);
    const matched = pairScore({ tokens: t, n: 1, regions: Float32Array.from([0, 1, 0, 0, 1, 0, 0, 0]), m: 2 }, 4, 9);
    const other = pairScore({ tokens: t, n: 1, regions: Float32Array.from([0, 1, 0, 0, 0, 0, 1, 0]), m: 2 }, 4, 9);
    // softmax(9·[0, 1]) puts 0.9999 of the weight on the matching region
    assert.ok(Math.abs(matched - 1 / (1 + Math.exp(-9))) < 1e-6, `${matched}`);
    assert.equal(other, 0);
  });

  it('averages over tokens, and λ → 0 gives the cosine of the token with the mean region', () => {
    const t = Float32Array.from([1, 0, 0, 0, 1, 0]);
    const r = Float32Array.from([1, 0, 0, 0, 0, 1]);
    const s = pairScore({ tokens: t, n: 2, regions: r, m: 2 }, 3, 1e-9);
    // token 1 · mean(r) = 0.5, token 2 (e2) · mean(r) = 0
    assert.ok(Math.abs(s - 0.25) < 1e-6, `${s}`);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { listwiseLoss, pairScore } from '../../src/train/cross-attention.js';
import { seeded } from '../../src/train/dual-encoder.js';

describe('cross-attention pair score', () => {
  const rand = seeded(3);
  const d = 4;
  const n = 3;
  const m = 5;
  const tokens = Float32Array.from({ length: n * d }, () => rand() * 2 - 1);
  const regions = Float32Array.from({ length: m * d }, () => rand() * 2 - 1);
  const lambda = 2;

  it('gradients of tokens and regions match finite differences', () => {
    const g = 0.7;
    const { grad } = pairScore({ tokens, n, regions, m }, d, lambda, g);
    const eps = 1e-3;
    for (const [name, arr, analytic] of [['tokens', tokens, grad!.dTokens], ['regions', regions, grad!.dRegions]] as const) {
      for (let i = 0; i < arr.length; i++) {
        const keep = arr[i]!;
        arr[i] = keep + eps;
        const up = pairScore({ tokens, n, regions, m }, d, lambda).score;
        arr[i] = keep - eps;
        const down = pairScore({ tokens, n, regions, m }, d, lambda).score;
        arr[i] = keep;
        const numeric = (g * (up - down)) / (2 * eps);
        assert.ok(Math.abs(numeric - analytic[i]!) < 1e-3 + 1e-2 * Math.abs(numeric), `${name}[${i}]: ${analytic[i]} vs ${numeric}`);
      }
    }
  });

  it('a token attends to the region that matches it', () => {
    const t = Float32Array.from([1, 0, 0, 0]);
    const r = Float32Array.from([0, 1, 0, 0, 3, 0, 0, 0]);
    const matched = pairScore({ tokens: t, n: 1, regions: r, m: 2 }, 4, 5).score;
    const other = pairScore({ tokens: t, n: 1, regions: Float32Array.from([0, 1, 0, 0, 0, 0, 1, 0]), m: 2 }, 4, 5).score;
    assert.ok(matched > 2.9 && other < 0.1, `${matched} ${other}`);
  });

  it('listwise loss is −log softmax of the positive, with the usual gradient', () => {
    const { loss, dScores } = listwiseLoss([2, 1, 0]);
    const z = Math.exp(2) + Math.exp(1) + 1;
    assert.ok(Math.abs(loss - -Math.log(Math.exp(2) / z)) < 1e-12);
    assert.ok(Math.abs(dScores[0]! - (Math.exp(2) / z - 1)) < 1e-12);
    assert.ok(Math.abs(dScores.reduce((a, b) => a + b, 0)) < 1e-12);
  });
});
